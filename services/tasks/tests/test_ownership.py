"""Another user's task is indistinguishable from a missing one, on every route."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from services.tasks.tests.support import Events, Headers, NewTask

ROUTES = [
    ("GET", "/tasks/{id}", None),
    ("PATCH", "/tasks/{id}", {"title": "mine now"}),
    ("POST", "/tasks/{id}/complete", None),
    ("POST", "/tasks/{id}/reopen", None),
    ("DELETE", "/tasks/{id}", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_bob_gets_404_on_alices_task(
    client: httpx.AsyncClient,
    alice: Headers,
    bob: Headers,
    new_task: NewTask,
    outbox_events: Events,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    task = await new_task(alice, title="Alice's secret", tags=["private"])
    missing = await client.request(
        method, path.format(id="00000000-0000-4000-8000-000000000000"), json=body, headers=bob
    )
    response = await client.request(method, path.format(id=task["id"]), json=body, headers=bob)
    assert response.status_code == 404
    # The same answer as for a task that never existed: nothing leaks.
    assert missing.status_code == 404
    assert response.json() == missing.json()
    assert "ETag" not in response.headers

    # ... even with Alice's current ETag in hand.
    guarded = await client.request(
        method, path.format(id=task["id"]), json=body, headers={**bob, "If-Match": '"1"'}
    )
    assert guarded.status_code == 404

    # Alice's task is untouched and nothing was emitted on Bob's behalf.
    mine = await client.get(f"/tasks/{task['id']}", headers=alice)
    assert mine.status_code == 200
    assert mine.json() == task
    assert [event.type for event in await outbox_events()] == ["tasks.task.created"]


async def test_lists_never_show_another_users_tasks(
    client: httpx.AsyncClient, alice: Headers, bob: Headers, new_task: NewTask
) -> None:
    for index in range(3):
        await new_task(alice, title=f"alpha {index}", tags=["shared"], priority="high")
    bobs = await new_task(bob, title="alpha bob", tags=["shared"], priority="high")
    for params in [
        {},
        {"tag": "shared"},
        {"q": "alpha"},
        {"priority": "high"},
        {"status": "open"},
        {"sort": "due_at"},
        {"limit": "1"},
    ]:
        listed = await client.get("/tasks", params=params, headers=bob)
        assert listed.status_code == 200
        assert [item["id"] for item in listed.json()["items"]] == [bobs["id"]], params


async def test_alices_cursor_is_refused_for_bob(
    client: httpx.AsyncClient, alice: Headers, bob: Headers, new_task: NewTask
) -> None:
    for _ in range(3):
        await new_task(alice)
        await new_task(bob)
    page = await client.get("/tasks", params={"limit": "1"}, headers=alice)
    cursor = page.json()["next_cursor"]
    assert cursor is not None
    foreign = await client.get("/tasks", params={"limit": "1", "cursor": cursor}, headers=bob)
    assert foreign.status_code == 400
    assert foreign.headers["content-type"].startswith("application/problem+json")
