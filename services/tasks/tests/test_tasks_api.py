"""The task routes of docs/spec/tasks.md: shapes, validation, scopes, status codes, headers."""

from __future__ import annotations

import uuid

import httpx
import pytest

from momentum_devtools.testing.issuer import TestIssuer
from services.tasks.tests.support import Events, Headers, NewTask


async def test_create_returns_the_task_with_location_and_etag(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    response = await client.post(
        "/tasks",
        json={
            "title": "File taxes",
            "description": "before the deadline",
            "priority": "high",
            "due_at": "2026-12-01T09:30:00+01:00",
            "tags": ["admin", "money", "admin"],
        },
        headers=alice,
    )
    assert response.status_code == 201
    task = response.json()
    assert response.headers["Location"] == f"/tasks/{task['id']}"
    assert response.headers["ETag"] == '"1"'
    assert task["title"] == "File taxes"
    assert task["status"] == "open"
    assert task["priority"] == "high"
    assert task["due_at"] == "2026-12-01T08:30:00Z"
    assert task["tags"] == ["admin", "money"]
    assert task["version"] == 1
    assert task["completed_at"] is None
    assert task["created_at"].endswith("Z")
    assert task["created_at"] == task["updated_at"]

    fetched = await client.get(response.headers["Location"], headers=alice)
    assert fetched.status_code == 200
    assert fetched.json() == task
    assert fetched.headers["ETag"] == '"1"'


async def test_defaults(client: httpx.AsyncClient, alice: Headers, new_task: NewTask) -> None:
    task = await new_task(alice, title="x")
    assert task["priority"] == "normal"
    assert task["description"] is None
    assert task["due_at"] is None
    assert task["tags"] == []


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"title": ""},
        {"title": "x" * 201},
        {"title": "ok", "description": "d" * 10_001},
        {"title": "ok", "priority": "urgent"},
        {"title": "ok", "tags": [""]},
        {"title": "ok", "tags": ["t" * 33]},
        {"title": "ok", "tags": [f"t{i}" for i in range(21)]},
        {"title": "ok", "due_at": "tomorrow"},
        {"title": "ok", "due_at": "2026-12-01T09:30:00"},
        {"title": "ok", "status": "done"},
        {"title": "ok", "owner_id": "someone"},
        {"title": "nul\u0000byte"},
        {"title": "ok", "tags": ["a\u0000"]},
        {"title": "ok", "due_at": "0001-01-01T00:00:00+05:00"},
        {"title": "ok", "due_at": "9999-12-31T23:00:00-05:00"},
        {"title": "ok", "due_at": "9999-12-31T00:00:00Z"},
        # RFC 3339 only: a bare number is no timestamp (it would be read as Unix time).
        {"title": "ok", "due_at": 1764000000},
        {"title": "ok", "due_at": "1764000000"},
        {"title": "ok", "due_at": 99999999999999},
        {"title": "ok", "due_at": True},
    ],
)
async def test_create_validation_is_422_problem(
    client: httpx.AsyncClient, alice: Headers, body: dict[str, object]
) -> None:
    response = await client.post("/tasks", json=body, headers=alice)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"]


async def test_a_lone_surrogate_is_422_not_a_driver_error(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    response = await client.post(
        "/tasks",
        content=b'{"title": "ok", "description": "lone \\ud800 surrogate"}',
        headers={**alice, "Content-Type": "application/json"},
    )
    assert response.status_code == 422


async def test_limits_are_inclusive(alice: Headers, new_task: NewTask) -> None:
    task = await new_task(
        alice,
        title="x" * 200,
        description="d" * 10_000,
        tags=[f"{i:0>32}" for i in range(20)],
    )
    assert len(task["tags"]) == 20


async def test_oversized_body_is_413(client: httpx.AsyncClient, alice: Headers) -> None:
    response = await client.post(
        "/tasks", json={"title": "x", "description": "d" * 300_000}, headers=alice
    )
    assert response.status_code == 413


async def test_token_is_required_and_checked(client: httpx.AsyncClient, issuer: TestIssuer) -> None:
    missing = await client.get("/tasks")
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    expired = await client.get("/tasks", headers=issuer.bearer(lifetime=-3600))
    assert expired.status_code == 401
    # Identity headers from a client are ignored: only the token counts.
    spoofed = await client.get(
        "/tasks", headers={"X-User-Id": "00000000-0000-0000-0000-000000000001"}
    )
    assert spoofed.status_code == 401


async def test_scopes(
    client: httpx.AsyncClient,
    issuer: TestIssuer,
    alice: Headers,
    alice_id: uuid.UUID,
    new_task: NewTask,
) -> None:
    task = await new_task(alice)
    reader = issuer.bearer(alice_id, scope="tasks:read")
    writer = issuer.bearer(alice_id, scope="tasks:write")
    assert (await client.get("/tasks", headers=reader)).status_code == 200
    denied = await client.post("/tasks", json={"title": "x"}, headers=reader)
    assert denied.status_code == 403
    assert 'scope="tasks:write"' in denied.headers["WWW-Authenticate"]
    assert (await client.get("/tasks", headers=writer)).status_code == 403
    assert (await client.get(f"/tasks/{task['id']}", headers=writer)).status_code == 403
    for method, path in [
        ("PATCH", f"/tasks/{task['id']}"),
        ("POST", f"/tasks/{task['id']}/complete"),
        ("POST", f"/tasks/{task['id']}/reopen"),
        ("DELETE", f"/tasks/{task['id']}"),
    ]:
        response = await client.request(method, path, json={"title": "y"}, headers=reader)
        assert response.status_code == 403, (method, path)


async def test_patch_changes_only_given_fields_and_bumps_the_version(
    client: httpx.AsyncClient, alice: Headers, new_task: NewTask
) -> None:
    task = await new_task(alice, title="Old", description="keep", tags=["a"])
    response = await client.patch(
        f"/tasks/{task['id']}",
        json={"title": "New", "due_at": "2027-01-01T00:00:00Z", "tags": ["b", "c"]},
        headers=alice,
    )
    assert response.status_code == 200
    updated = response.json()
    assert response.headers["ETag"] == '"2"'
    assert updated["title"] == "New"
    assert updated["description"] == "keep"
    assert updated["tags"] == ["b", "c"]
    assert updated["due_at"] == "2027-01-01T00:00:00Z"
    assert updated["version"] == 2
    assert updated["updated_at"] >= task["updated_at"]

    cleared = await client.patch(
        f"/tasks/{task['id']}", json={"description": None, "due_at": None}, headers=alice
    )
    assert cleared.json()["description"] is None
    assert cleared.json()["due_at"] is None
    assert cleared.json()["version"] == 3


async def test_patch_without_a_change_keeps_the_version(
    client: httpx.AsyncClient, alice: Headers, outbox_events: Events, new_task: NewTask
) -> None:
    task = await new_task(alice, title="Same")
    response = await client.patch(f"/tasks/{task['id']}", json={"title": "Same"}, headers=alice)
    assert response.status_code == 200
    assert response.json()["version"] == 1
    assert [e.type for e in await outbox_events()] == ["tasks.task.created"]


@pytest.mark.parametrize(
    "body",
    [{"status": "done"}, {"title": None}, {"priority": None}, {"tags": None}, {"title": ""}],
)
async def test_patch_validation(
    client: httpx.AsyncClient, alice: Headers, body: dict[str, object], new_task: NewTask
) -> None:
    task = await new_task(alice)
    response = await client.patch(f"/tasks/{task['id']}", json=body, headers=alice)
    assert response.status_code == 422


async def test_complete_and_reopen(
    client: httpx.AsyncClient, alice: Headers, new_task: NewTask
) -> None:
    task = await new_task(alice)
    done = await client.post(f"/tasks/{task['id']}/complete", headers=alice)
    assert done.status_code == 200
    assert done.json()["status"] == "done"
    assert done.json()["completed_at"] is not None
    assert done.json()["version"] == 2

    again = await client.post(f"/tasks/{task['id']}/complete", headers=alice)
    assert again.status_code == 200
    assert again.json() == done.json()  # a no-op: same version, same completion time

    reopened = await client.post(f"/tasks/{task['id']}/reopen", headers=alice)
    assert reopened.status_code == 200
    assert reopened.json()["status"] == "open"
    assert reopened.json()["completed_at"] is None
    assert reopened.json()["version"] == 3
    assert reopened.headers["ETag"] == '"3"'


async def test_delete_makes_the_task_404_everywhere(
    client: httpx.AsyncClient, alice: Headers, new_task: NewTask
) -> None:
    task = await new_task(alice, tags=["x"])
    response = await client.delete(f"/tasks/{task['id']}", headers=alice)
    assert response.status_code == 204
    assert response.content == b""
    path = f"/tasks/{task['id']}"
    assert (await client.get(path, headers=alice)).status_code == 404
    assert (await client.patch(path, json={"title": "y"}, headers=alice)).status_code == 404
    assert (await client.post(f"{path}/complete", headers=alice)).status_code == 404
    assert (await client.post(f"{path}/reopen", headers=alice)).status_code == 404
    assert (await client.delete(path, headers=alice)).status_code == 404
    listed = await client.get("/tasks", params={"tag": "x"}, headers=alice)
    assert listed.json()["items"] == []


@pytest.mark.parametrize("task_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
async def test_unknown_ids_are_404_problems(
    client: httpx.AsyncClient, alice: Headers, task_id: str
) -> None:
    response = await client.get(f"/tasks/{task_id}", headers=alice)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_malformed_idempotency_key_is_400(client: httpx.AsyncClient, alice: Headers) -> None:
    response = await client.post(
        "/tasks", json={"title": "x"}, headers={**alice, "Idempotency-Key": "k" * 256}
    )
    assert response.status_code == 400


async def test_readyz_reports_database_and_no_nats_dependency(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["database"]["status"] == "ok"
