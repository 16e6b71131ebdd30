"""Types of the tasks tests' fixtures, declared once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from momentum_shared.events import CloudEvent

Headers = dict[str, str]
"""A bearer token's request headers (the ``alice`` and ``bob`` fixtures)."""

NewTask = Callable[..., Awaitable[dict[str, Any]]]
"""The ``new_task`` fixture: ``await new_task(headers, title=..., ...)`` creates one task."""

Events = Callable[[], Awaitable[list[CloudEvent]]]
"""The ``outbox_events`` fixture: every event in the outbox, oldest first."""


async def page_through(
    client: httpx.AsyncClient, headers: Headers, params: dict[str, str]
) -> list[dict[str, Any]]:
    """Every item of ``GET /tasks`` with ``params``, following ``next_cursor`` to the end."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(1000):
        query = dict(params)
        if cursor is not None:
            query["cursor"] = cursor
        response = await client.get("/tasks", params=query, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        items.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("paging never ended")
