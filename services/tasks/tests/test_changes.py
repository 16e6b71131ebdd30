"""The changes feed of docs/spec/tasks.md §7: an offline copy kept in step, no change missed."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from momentum_devtools.testing.issuer import TestIssuer
from momentum_shared.events import utcnow
from momentum_tasks.app import prune_tombstones
from momentum_tasks.state import app_state
from services.tasks.tests.support import Headers, NewTask

Copy = dict[str, dict[str, Any]]


async def _feed(
    client: httpx.AsyncClient, headers: Headers, since: str | None = None, limit: int = 100
) -> dict[str, Any]:
    params: dict[str, Any] = {"limit": limit}
    if since is not None:
        params["since"] = since
    response = await client.get("/tasks/changes", params=params, headers=headers)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


def _apply(copy: Copy, page: dict[str, Any]) -> None:
    for change in page["changes"]:
        if "task" in change:
            copy[change["task"]["id"]] = change["task"]
        else:
            copy.pop(change["deleted"]["id"], None)


async def _follow(
    client: httpx.AsyncClient, headers: Headers, copy: Copy, since: str | None, limit: int = 100
) -> str | None:
    """Read pages until the feed has no more; the token to continue from."""
    while True:
        page = await _feed(client, headers, since, limit)
        _apply(copy, page)
        since = page["next_since"]
        if not page["has_more"]:
            return since


async def _server_copy(client: httpx.AsyncClient, headers: Headers) -> Copy:
    tasks: Copy = {}
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 100}
        if cursor is not None:
            params["cursor"] = cursor
        page = (await client.get("/tasks", params=params, headers=headers)).json()
        tasks.update({task["id"]: task for task in page["items"]})
        cursor = page["next_cursor"]
        if cursor is None:
            return tasks


async def test_without_since_the_feed_returns_every_current_task(
    client: httpx.AsyncClient, alice: Headers, bob: Headers, new_task: NewTask
) -> None:
    mine = [await new_task(alice, title=f"task {i}") for i in range(3)]
    await new_task(bob, title="Bob's")
    page = await _feed(client, alice)
    assert page["has_more"] is False
    assert [change["task"] for change in page["changes"]] == mine
    assert isinstance(page["next_since"], str)


async def test_following_the_feed_brings_changes_and_deletions_in_their_latest_state(
    client: httpx.AsyncClient, alice: Headers, new_task: NewTask
) -> None:
    kept = await new_task(alice, title="Kept")
    doomed = await new_task(alice, title="Doomed")
    copy: Copy = {}
    since = await _follow(client, alice, copy, None)
    assert set(copy) == {kept["id"], doomed["id"]}

    quiet = await _feed(client, alice, since)
    assert quiet["changes"] == []
    assert quiet["has_more"] is False

    path = f"/tasks/{kept['id']}"
    await client.patch(path, json={"title": "Kept, renamed"}, headers=alice)
    await client.post(f"{path}/complete", headers=alice)
    await client.delete(f"/tasks/{doomed['id']}", headers=alice)
    added = await new_task(alice, title="Added")
    page = await _feed(client, alice, quiet["next_since"])
    current = (await client.get(path, headers=alice)).json()
    # A task changed twice appears once, in its latest state; the deletion as a tombstone.
    assert page["changes"][0] == {"task": current}
    assert page["changes"][1]["deleted"]["id"] == doomed["id"]
    assert page["changes"][1]["deleted"]["deleted_at"].endswith("Z")
    assert page["changes"][2] == {"task": added}
    assert len(page["changes"]) == 3
    _apply(copy, page)
    assert copy == await _server_copy(client, alice)


async def test_paging_through_the_feed_returns_each_change_once(
    client: httpx.AsyncClient, alice: Headers, new_task: NewTask
) -> None:
    created = [await new_task(alice, title=f"task {i}") for i in range(7)]
    seen: list[str] = []
    since: str | None = None
    pages = 0
    while True:
        page = await _feed(client, alice, since, limit=3)
        seen.extend(change["task"]["id"] for change in page["changes"])
        since = page["next_since"]
        pages += 1
        if not page["has_more"]:
            break
    assert seen == [task["id"] for task in created]
    assert pages == 3


async def test_a_malformed_or_foreign_token_asks_the_client_to_resync(
    client: httpx.AsyncClient, alice: Headers, bob: Headers, new_task: NewTask
) -> None:
    await new_task(bob)
    bobs = (await _feed(client, bob))["next_since"]
    for since in ("nonsense", bobs, bobs[:-2] + "AA", "x" * 5000):
        response = await client.get("/tasks/changes", params={"since": since}, headers=alice)
        assert response.status_code == 410, since
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["type"].endswith("/resync-required")


async def test_a_token_older_than_the_tombstones_asks_the_client_to_resync(
    app: FastAPI, client: httpx.AsyncClient, alice: Headers, new_task: NewTask
) -> None:
    task = await new_task(alice)
    other = await new_task(alice)
    before = await _follow(client, alice, {}, None)
    await client.delete(f"/tasks/{task['id']}", headers=alice)
    after = await _follow(client, alice, {}, before)
    await client.delete(f"/tasks/{other['id']}", headers=alice)
    state = app_state(app)
    # The first deletion is past the retention, the second not yet.
    later = utcnow() + timedelta(seconds=state.settings.tombstone_retention_seconds)
    later -= timedelta(seconds=1)
    assert await prune_tombstones(state.session_factory, state.settings, now=later) == 0
    response = await client.get("/tasks/changes", params={"since": before}, headers=alice)
    assert response.status_code == 200
    assert (
        await prune_tombstones(state.session_factory, state.settings, now=later + timedelta(days=1))
        == 2
    )
    expired = await client.get("/tasks/changes", params={"since": before}, headers=alice)
    assert expired.status_code == 410
    assert expired.json()["type"].endswith("/resync-required")
    assert (
        await client.get("/tasks/changes", params={"since": after}, headers=alice)
    ).status_code == 410
    # Starting again without since works, and its token goes on working.
    fresh = await _feed(client, alice)
    assert fresh["changes"] == []
    assert (
        await client.get("/tasks/changes", params={"since": fresh["next_since"]}, headers=alice)
    ).status_code == 200


async def test_a_token_kept_longer_than_the_retention_asks_the_client_to_resync(
    app: FastAPI, client: httpx.AsyncClient, alice: Headers, new_task: NewTask
) -> None:
    await new_task(alice)
    since = (await _feed(client, alice))["next_since"]
    state = app_state(app)
    retention = timedelta(seconds=state.settings.tombstone_retention_seconds)
    state.clock = lambda: utcnow() + retention + timedelta(minutes=1)
    response = await client.get("/tasks/changes", params={"since": since}, headers=alice)
    assert response.status_code == 410


async def test_a_deleted_project_shows_its_tasks_as_deleted(
    client: httpx.AsyncClient, alice: Headers, new_task: NewTask
) -> None:
    project = (await client.post("/projects", json={"name": "Gone"}, headers=alice)).json()
    inside = [await new_task(alice, project_id=project["id"]) for _ in range(2)]
    copy: Copy = {}
    since = await _follow(client, alice, copy, None)
    assert set(copy) == {task["id"] for task in inside}
    await client.delete(f"/projects/{project['id']}", headers=alice)
    await _follow(client, alice, copy, since)
    assert copy == {}


async def test_a_failed_batch_leaves_nothing_in_the_feed(
    client: httpx.AsyncClient, alice: Headers, new_task: NewTask
) -> None:
    task = await new_task(alice)
    since = await _follow(client, alice, {}, None)
    failed = await client.post(
        "/tasks/batch",
        json={
            "operations": [
                {"op": "update", "id": task["id"], "data": {"title": "never"}},
                {"op": "delete", "id": str(uuid.uuid4())},
            ]
        },
        headers=alice,
    )
    assert failed.status_code == 404
    assert (await _feed(client, alice, since))["changes"] == []


async def test_the_feed_needs_the_read_scope(
    client: httpx.AsyncClient, issuer: TestIssuer, alice_id: uuid.UUID
) -> None:
    writer = issuer.bearer(alice_id, scope="tasks:write")
    denied = await client.get("/tasks/changes", headers=writer)
    assert denied.status_code == 403
    assert 'scope="tasks:read"' in denied.headers["WWW-Authenticate"]


async def test_a_client_following_the_feed_under_concurrent_writers_ends_with_the_servers_tasks(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    writers_done = asyncio.Event()
    rng = random.Random(14)

    async def writer(name: str) -> None:
        mine: list[str] = []
        for step in range(30):
            choice = rng.random()
            if not mine or choice < 0.3:
                response = await client.post(
                    "/tasks", json={"title": f"{name} {step}"}, headers=alice
                )
                assert response.status_code == 201, response.text
                mine.append(response.json()["id"])
                continue
            task_id = rng.choice(mine)
            if choice < 0.5:
                response = await client.patch(
                    f"/tasks/{task_id}", json={"title": f"{name} {step}'"}, headers=alice
                )
            elif choice < 0.65:
                response = await client.post(f"/tasks/{task_id}/complete", headers=alice)
            elif choice < 0.75:
                response = await client.post(f"/tasks/{task_id}/reopen", headers=alice)
            elif choice < 0.9:
                response = await client.post(
                    "/tasks/batch",
                    json={
                        "operations": [
                            {"op": "update", "id": task_id, "data": {"priority": "high"}},
                            {"op": "create", "data": {"title": f"{name} {step} batch"}},
                        ]
                    },
                    headers=alice,
                )
                if response.status_code == 200:
                    mine.append(response.json()["results"][1]["task"]["id"])
            else:
                response = await client.delete(f"/tasks/{task_id}", headers=alice)
                mine.remove(task_id)
            assert response.status_code in (200, 204), response.text

    async def follower() -> tuple[Copy, str | None]:
        copy: Copy = {}
        since: str | None = None
        while not writers_done.is_set():
            since = await _follow(client, alice, copy, since, limit=4)
            await asyncio.sleep(0)
        since = await _follow(client, alice, copy, since, limit=4)
        return copy, since

    following = asyncio.create_task(follower())
    await asyncio.gather(*(writer(f"writer {i}") for i in range(4)))
    writers_done.set()
    copy, since = await following
    server = await _server_copy(client, alice)
    assert len(server) > 20
    assert copy == server
    assert (await _feed(client, alice, since))["changes"] == []
