"""Optimistic concurrency (ETag / If-Match / 412) and Idempotency-Key on POST /tasks."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from momentum_shared.events import utcnow
from momentum_tasks.cli import purge_idempotency_keys
from momentum_tasks.models import IdempotencyKey
from momentum_tasks.settings import TasksSettings
from momentum_tasks.state import app_state
from services.tasks.tests.support import Events, Headers, NewTask

KEYS: sa.Table = IdempotencyKey.__table__  # type: ignore[attr-defined]


# --- If-Match ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("PATCH", "", {"title": "changed"}),
        ("POST", "/complete", None),
        ("DELETE", "", None),
    ],
)
async def test_stale_if_match_is_412_and_changes_nothing(
    client: httpx.AsyncClient,
    alice: Headers,
    new_task: NewTask,
    outbox_events: Events,
    method: str,
    suffix: str,
    body: dict[str, Any] | None,
) -> None:
    task = await new_task(alice)
    await client.patch(f"/tasks/{task['id']}", json={"title": "v2"}, headers=alice)
    response = await client.request(
        method,
        f"/tasks/{task['id']}{suffix}",
        json=body,
        headers={**alice, "If-Match": '"1"'},
    )
    assert response.status_code == 412
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["ETag"] == '"2"'
    current = (await client.get(f"/tasks/{task['id']}", headers=alice)).json()
    assert current["version"] == 2
    assert current["title"] == "v2"
    assert current["status"] == "open"
    assert [e.type for e in await outbox_events()] == ["tasks.task.created", "tasks.task.updated"]


async def test_reopen_with_a_stale_etag_is_412(
    client: httpx.AsyncClient, alice: Headers, new_task: NewTask
) -> None:
    task = await new_task(alice)
    await client.post(f"/tasks/{task['id']}/complete", headers=alice)
    stale = await client.post(f"/tasks/{task['id']}/reopen", headers={**alice, "If-Match": '"1"'})
    assert stale.status_code == 412
    fresh = await client.post(f"/tasks/{task['id']}/reopen", headers={**alice, "If-Match": '"2"'})
    assert fresh.status_code == 200


@pytest.mark.parametrize(
    ("if_match", "status"),
    [
        ('"1"', 200),
        ("*", 200),
        ('"7", "1"', 200),
        ('W/"1"', 412),
        ('"2"', 412),
        ("junk", 412),
        ('"01"', 412),
        ("", 412),
        # Latin-1 digits that str.isdigit() accepts but int() refuses: never a 500.
        ('"\u00b2"', 412),
        ("\u00b9", 412),
    ],
)
async def test_if_match_forms(
    client: httpx.AsyncClient, alice: Headers, new_task: NewTask, if_match: str, status: int
) -> None:
    task = await new_task(alice)
    # Raw bytes: a header value may carry any Latin-1 octet, as a hostile client sends it.
    headers = {k.encode(): v.encode("latin-1") for k, v in {**alice, "If-Match": if_match}.items()}
    response = await client.patch(f"/tasks/{task['id']}", json={"title": "next"}, headers=headers)
    assert response.status_code == status
    version = 2 if status == 200 else 1
    assert response.headers["ETag"] == f'"{version}"'


async def test_concurrent_patches_with_one_etag_leave_exactly_one_winner(
    client: httpx.AsyncClient, alice: Headers, new_task: NewTask, outbox_events: Events
) -> None:
    task = await new_task(alice)
    responses = await asyncio.gather(
        *(
            client.patch(
                f"/tasks/{task['id']}",
                json={"title": f"writer {index}"},
                headers={**alice, "If-Match": '"1"'},
            )
            for index in range(6)
        )
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200, 412, 412, 412, 412, 412]
    winner = next(response.json() for response in responses if response.status_code == 200)
    current = (await client.get(f"/tasks/{task['id']}", headers=alice)).json()
    assert current["version"] == 2
    assert current["title"] == winner["title"]
    updates = [e for e in await outbox_events() if e.type == "tasks.task.updated"]
    assert len(updates) == 1


async def test_concurrent_patches_without_if_match_all_apply(
    client: httpx.AsyncClient, alice: Headers, new_task: NewTask
) -> None:
    task = await new_task(alice)
    responses = await asyncio.gather(
        *(
            client.patch(f"/tasks/{task['id']}", json={"title": f"w{i}"}, headers=alice)
            for i in range(5)
        )
    )
    assert all(response.status_code == 200 for response in responses)
    assert sorted(response.json()["version"] for response in responses) == [2, 3, 4, 5, 6]


# --- Idempotency-Key --------------------------------------------------------------------


async def test_same_key_and_body_replays_the_first_response(
    client: httpx.AsyncClient, alice: Headers, outbox_events: Events
) -> None:
    headers = {**alice, "Idempotency-Key": "order-42"}
    body = {"title": "Pay rent", "tags": ["home"]}
    first = await client.post("/tasks", json=body, headers=headers)
    second = await client.post("/tasks", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["Location"] == first.headers["Location"]
    assert second.headers["ETag"] == first.headers["ETag"]
    # The same response: every header but the per-request id, none added.
    assert {k: v for k, v in second.headers.items() if k != "x-request-id"} == {
        k: v for k, v in first.headers.items() if k != "x-request-id"
    }
    listed = (await client.get("/tasks", headers=alice)).json()["items"]
    assert [item["id"] for item in listed] == [first.json()["id"]]
    assert [e.type for e in await outbox_events()] == ["tasks.task.created"]


async def test_replay_returns_the_original_even_after_later_changes(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    headers = {**alice, "Idempotency-Key": "k1"}
    first = await client.post("/tasks", json={"title": "a"}, headers=headers)
    await client.patch(f"/tasks/{first.json()['id']}", json={"title": "b"}, headers=alice)
    again = await client.post("/tasks", json={"title": "a"}, headers=headers)
    assert again.status_code == 201
    assert again.json() == first.json()


async def test_same_key_with_another_body_is_422(
    client: httpx.AsyncClient, alice: Headers, outbox_events: Events
) -> None:
    headers = {**alice, "Idempotency-Key": "order-43"}
    assert (await client.post("/tasks", json={"title": "a"}, headers=headers)).status_code == 201
    other = await client.post("/tasks", json={"title": "b"}, headers=headers)
    assert other.status_code == 422
    assert other.headers["content-type"].startswith("application/problem+json")
    assert len((await client.get("/tasks", headers=alice)).json()["items"]) == 1
    assert len(await outbox_events()) == 1


async def test_keys_are_per_user(client: httpx.AsyncClient, alice: Headers, bob: Headers) -> None:
    body = {"title": "same"}
    a = await client.post("/tasks", json=body, headers={**alice, "Idempotency-Key": "k"})
    b = await client.post("/tasks", json=body, headers={**bob, "Idempotency-Key": "k"})
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"]
    assert (await client.get(f"/tasks/{a.json()['id']}", headers=bob)).status_code == 404


async def test_a_key_older_than_24_hours_starts_afresh(
    client: httpx.AsyncClient, alice: Headers, app: FastAPI
) -> None:
    headers = {**alice, "Idempotency-Key": "old"}
    first = await client.post("/tasks", json={"title": "a"}, headers=headers)
    async with app_state(app).engine.begin() as connection:
        await connection.execute(
            sa.update(KEYS).values(created_at=utcnow() - timedelta(hours=24, minutes=1))
        )
    second = await client.post("/tasks", json={"title": "other body is fine now"}, headers=headers)
    assert second.status_code == 201
    assert second.json()["id"] != first.json()["id"]
    third = await client.post("/tasks", json={"title": "other body is fine now"}, headers=headers)
    assert third.json()["id"] == second.json()["id"]


async def test_concurrent_duplicates_create_one_task(
    client: httpx.AsyncClient, alice: Headers, outbox_events: Events
) -> None:
    headers = {**alice, "Idempotency-Key": "burst"}
    responses = await asyncio.gather(
        *(client.post("/tasks", json={"title": "once"}, headers=headers) for _ in range(8))
    )
    assert [response.status_code for response in responses] == [201] * 8
    assert len({response.json()["id"] for response in responses}) == 1
    listed = (await client.get("/tasks", headers=alice)).json()["items"]
    assert len(listed) == 1
    assert [e.type for e in await outbox_events()] == ["tasks.task.created"]


async def test_concurrent_duplicates_with_different_bodies_create_one_task(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    headers = {**alice, "Idempotency-Key": "race"}
    responses = await asyncio.gather(
        *(client.post("/tasks", json={"title": f"t{i}"}, headers=headers) for i in range(6))
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201, 422, 422, 422, 422, 422]
    assert len((await client.get("/tasks", headers=alice)).json()["items"]) == 1


async def test_expired_keys_are_purged_and_fresh_ones_kept(
    client: httpx.AsyncClient, alice: Headers, app: FastAPI, settings: TasksSettings
) -> None:
    for key in ("old", "fresh"):
        response = await client.post(
            "/tasks", json={"title": key}, headers={**alice, "Idempotency-Key": key}
        )
        assert response.status_code == 201
    async with app_state(app).engine.begin() as connection:
        await connection.execute(
            sa.update(KEYS)
            .where(KEYS.c.key == "old")
            .values(created_at=utcnow() - timedelta(hours=25))
        )
    assert await purge_idempotency_keys(settings) == 1
    async with app_state(app).engine.connect() as connection:
        left = (await connection.execute(sa.select(KEYS.c.key))).scalars().all()
    assert list(left) == ["fresh"]
