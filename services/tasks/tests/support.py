"""Types of the tasks tests' fixtures, declared once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from momentum_shared.events import CloudEvent

Headers = dict[str, str]
"""A bearer token's request headers (the ``alice`` and ``bob`` fixtures)."""

NewTask = Callable[..., Awaitable[dict[str, Any]]]
"""The ``new_task`` fixture: ``await new_task(headers, title=..., ...)`` creates one task."""

Events = Callable[[], Awaitable[list[CloudEvent]]]
"""The ``outbox_events`` fixture: every event in the outbox, oldest first."""
