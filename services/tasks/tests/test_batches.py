"""Batches of docs/spec/tasks.md §5: in order, one transaction, all or nothing, idempotent."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from momentum_devtools.testing.issuer import TestIssuer
from services.tasks.tests.support import Events, Headers, NewTask


async def _batch(
    client: httpx.AsyncClient, headers: Headers, *operations: dict[str, Any]
) -> httpx.Response:
    return await client.post("/tasks/batch", json={"operations": list(operations)}, headers=headers)


async def _all_tasks(client: httpx.AsyncClient, headers: Headers) -> list[dict[str, Any]]:
    response = await client.get("/tasks", params={"limit": 100}, headers=headers)
    assert response.status_code == 200
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_a_batch_applies_every_operation_in_order_and_answers_each(
    client: httpx.AsyncClient, alice: Headers, new_task: NewTask, outbox_events: Events
) -> None:
    doomed = await new_task(alice, title="Old chore")
    kept = await new_task(alice, title="Report")
    response = await _batch(
        client,
        alice,
        {"op": "create", "data": {"title": "Book flights", "tags": ["travel"]}},
        {"op": "update", "id": kept["id"], "data": {"priority": "high"}, "if_match": '"1"'},
        {"op": "complete", "id": kept["id"], "if_match": '"2"'},
        {"op": "reopen", "id": kept["id"]},
        {"op": "delete", "id": doomed["id"]},
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [(r["index"], r["status"]) for r in results] == [
        (0, 201),
        (1, 200),
        (2, 200),
        (3, 200),
        (4, 204),
    ]
    created = results[0]["task"]
    assert created["title"] == "Book flights"
    assert created["tags"] == ["travel"]
    # Each result is the task as that operation left it, not as the batch left it.
    assert results[1]["task"]["priority"] == "high"
    assert results[1]["task"]["version"] == 2
    assert results[2]["task"]["status"] == "done"
    assert results[3]["task"]["status"] == "open"
    assert results[3]["task"]["version"] == 4
    assert "task" not in results[4]

    assert (await client.get(f"/tasks/{doomed['id']}", headers=alice)).status_code == 404
    fetched = await client.get(f"/tasks/{created['id']}", headers=alice)
    assert fetched.json() == created
    assert [e.type for e in await outbox_events()][2:] == [
        "tasks.task.created",
        "tasks.task.updated",
        "tasks.task.completed",
        "tasks.task.reopened",
        "tasks.task.deleted",
    ]


async def test_a_failing_operation_changes_nothing_and_emits_nothing(
    client: httpx.AsyncClient, alice: Headers, new_task: NewTask, outbox_events: Events
) -> None:
    task = await new_task(alice, title="Stays as it is")
    before = await outbox_events()
    response = await _batch(
        client,
        alice,
        {"op": "create", "data": {"title": "Never saved"}},
        {"op": "update", "id": task["id"], "data": {"title": "Never renamed"}},
        {"op": "delete", "id": str(uuid.uuid4())},
        {"op": "complete", "id": task["id"]},
    )
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 404
    (error,) = problem["errors"]
    assert (error["index"], error["status"], error["detail"]) == (2, 404, "no such task")
    assert error["loc"] == ["body", "operations", "2"]
    assert await _all_tasks(client, alice) == [task]
    assert await outbox_events() == before


async def test_a_stale_if_match_fails_the_batch_with_412(
    client: httpx.AsyncClient, alice: Headers, new_task: NewTask
) -> None:
    task = await new_task(alice)
    response = await _batch(
        client,
        alice,
        {"op": "update", "id": task["id"], "data": {"title": "v2"}},
        {"op": "complete", "id": task["id"], "if_match": '"1"'},
    )
    assert response.status_code == 412
    (error,) = response.json()["errors"]
    assert (error["index"], error["status"]) == (1, 412)
    current = (await client.get(f"/tasks/{task['id']}", headers=alice)).json()
    assert current == task


async def test_a_later_operation_sees_what_an_earlier_one_did(
    client: httpx.AsyncClient, alice: Headers, new_task: NewTask
) -> None:
    task = await new_task(alice)
    response = await _batch(
        client,
        alice,
        {"op": "update", "id": task["id"], "data": {"title": "v2"}, "if_match": '"1"'},
        {"op": "update", "id": task["id"], "data": {"title": "v3"}, "if_match": '"2"'},
        {"op": "delete", "id": task["id"], "if_match": '"3"'},
        {"op": "reopen", "id": task["id"]},
    )
    # The task deleted by operation 2 is absent for operation 3: the whole batch is undone.
    assert response.status_code == 404
    assert response.json()["errors"][0]["index"] == 3
    assert (await client.get(f"/tasks/{task['id']}", headers=alice)).json() == task


async def test_invalid_operation_data_is_422_naming_the_operation(
    client: httpx.AsyncClient, alice: Headers, new_task: NewTask
) -> None:
    task = await new_task(alice)
    response = await _batch(
        client,
        alice,
        {"op": "create", "data": {"title": "fine"}},
        {"op": "update", "id": task["id"], "data": {"title": "", "status": "done"}},
    )
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert {e["index"] for e in errors} == {1}
    assert {e["status"] for e in errors} == {422}
    assert {tuple(e["loc"]) for e in errors} == {
        ("body", "operations", "1", "data", "title"),
        ("body", "operations", "1", "data", "status"),
    }
    assert all(e["detail"] for e in errors)
    assert await _all_tasks(client, alice) == [task]


async def test_the_first_failing_operation_decides_the_status(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    response = await _batch(
        client,
        alice,
        {"op": "complete", "id": str(uuid.uuid4())},
        {"op": "create", "data": {"title": ""}},
    )
    assert response.status_code == 404
    first, later = response.json()["errors"]
    assert (first["index"], first["status"], first["detail"]) == (0, 404, "no such task")
    # The later operation's invalid data is listed too, though the batch stopped before it.
    assert (later["index"], later["status"]) == (1, 422)
    assert later["loc"] == ["body", "operations", "1", "data", "title"]


async def test_every_operation_with_invalid_data_is_listed_after_the_first_failure(
    client: httpx.AsyncClient, alice: Headers, new_task: NewTask
) -> None:
    task = await new_task(alice)
    response = await _batch(
        client,
        alice,
        {"op": "create", "data": {"title": ""}},
        {"op": "update", "id": task["id"], "data": {"title": "fine"}},
        {"op": "complete"},
        {"op": "create", "data": {"title": "x", "priority": "urgent"}},
    )
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert [(e["index"], e["status"]) for e in errors] == [(0, 422), (2, 422), (3, 422)]
    assert [e["loc"][-1] for e in errors] == ["title", "id", "priority"]
    assert await _all_tasks(client, alice) == [task]


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "create"},
        {"op": "create", "id": "0f8fad5b-d9cb-469f-a165-70867728950e", "data": {"title": "x"}},
        {"op": "create", "data": {"title": "x"}, "if_match": '"1"'},
        {"op": "update", "data": {"title": "x"}},
        {"op": "update", "id": "0f8fad5b-d9cb-469f-a165-70867728950e"},
        {"op": "complete"},
        {"op": "delete", "id": "0f8fad5b-d9cb-469f-a165-70867728950e", "data": {}},
    ],
)
async def test_an_operation_without_what_it_needs_is_422(
    client: httpx.AsyncClient, alice: Headers, operation: dict[str, Any]
) -> None:
    response = await _batch(client, alice, operation)
    assert response.status_code == 422
    assert response.json()["errors"][0]["index"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {"operations": []},
        {"operations": [{"op": "create", "data": {"title": f"t{i}"}} for i in range(101)]},
        {"operations": [{"op": "archive", "id": "0f8fad5b-d9cb-469f-a165-70867728950e"}]},
        {"operations": [{"op": "create", "data": {"title": "x"}, "extra": 1}]},
        {"ops": []},
    ],
)
async def test_a_malformed_batch_is_422_and_creates_nothing(
    client: httpx.AsyncClient, alice: Headers, body: dict[str, Any]
) -> None:
    response = await client.post("/tasks/batch", json=body, headers=alice)
    assert response.status_code == 422
    assert await _all_tasks(client, alice) == []


async def test_a_batch_of_100_operations_is_accepted(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    operations = [{"op": "create", "data": {"title": f"task {i}"}} for i in range(100)]
    response = await _batch(client, alice, *operations)
    assert response.status_code == 200
    assert len(response.json()["results"]) == 100
    assert len(await _all_tasks(client, alice)) == 100


async def test_another_users_task_in_a_batch_is_404_like_an_absent_one(
    client: httpx.AsyncClient, alice: Headers, bob: Headers, new_task: NewTask
) -> None:
    bobs = await new_task(bob, title="Bob's")
    for op in ("complete", "delete"):
        response = await _batch(client, alice, {"op": op, "id": bobs["id"]})
        assert response.status_code == 404
    response = await _batch(client, alice, {"op": "update", "id": "not-a-uuid", "data": {}})
    assert response.status_code == 404
    assert (await client.get(f"/tasks/{bobs['id']}", headers=bob)).json() == bobs


async def test_a_repeated_idempotency_key_replays_the_batch_without_applying_it_again(
    client: httpx.AsyncClient, alice: Headers, outbox_events: Events
) -> None:
    headers = {**alice, "Idempotency-Key": "batch-1"}
    body = {"operations": [{"op": "create", "data": {"title": "Once"}}]}
    first = await client.post("/tasks/batch", json=body, headers=headers)
    again = await client.post("/tasks/batch", json=body, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert len(await _all_tasks(client, alice)) == 1
    assert len(await outbox_events()) == 1

    other = {"operations": [{"op": "create", "data": {"title": "Twice"}}]}
    reused = await client.post("/tasks/batch", json=other, headers=headers)
    assert reused.status_code == 422
    # A key of POST /tasks is another request's key here, and the other way round.
    single = await client.post("/tasks", json={"title": "Once"}, headers=headers)
    assert single.status_code == 422


async def test_a_failed_batch_leaves_its_idempotency_key_free_for_a_retry(
    client: httpx.AsyncClient, alice: Headers, new_task: NewTask
) -> None:
    task = await new_task(alice)
    headers = {**alice, "Idempotency-Key": "batch-2"}
    body = {"operations": [{"op": "complete", "id": task["id"], "if_match": '"2"'}]}
    failed = await client.post("/tasks/batch", json=body, headers=headers)
    assert failed.status_code == 412
    await client.patch(f"/tasks/{task['id']}", json={"title": "v2"}, headers=alice)
    retried = await client.post("/tasks/batch", json=body, headers=headers)
    assert retried.status_code == 200
    assert retried.json()["results"][0]["task"]["status"] == "done"


async def test_a_batch_needs_the_write_scope(
    client: httpx.AsyncClient, issuer: TestIssuer, alice_id: uuid.UUID
) -> None:
    reader = issuer.bearer(alice_id, scope="tasks:read")
    response = await _batch(client, reader, {"op": "create", "data": {"title": "x"}})
    assert response.status_code == 403
    assert 'scope="tasks:write"' in response.headers["WWW-Authenticate"]


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PATCH", "/tasks/batch", "POST"),
        ("GET", "/tasks/batch", "POST"),
        ("DELETE", "/tasks/batch", "POST"),
        ("POST", "/tasks/changes", "GET, HEAD"),
        ("PATCH", "/tasks/changes", "GET, HEAD"),
        ("OPTIONS", "/tasks/batch", "POST"),
    ],
)
async def test_other_methods_on_the_batch_and_changes_paths_are_405_not_a_task(
    client: httpx.AsyncClient, alice: Headers, method: str, path: str, allow: str
) -> None:
    response = await client.request(method, path, json={}, headers=alice)
    assert response.status_code == 405
    assert response.headers["Allow"] == allow
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_concurrent_batches_over_the_same_tasks_in_opposite_orders_all_succeed(
    client: httpx.AsyncClient, alice: Headers, new_task: NewTask
) -> None:
    first, second = await new_task(alice, title="first"), await new_task(alice, title="second")
    forward = [
        {"op": "update", "id": first["id"], "data": {"priority": "high"}},
        {"op": "update", "id": second["id"], "data": {"priority": "high"}},
    ]
    responses = await asyncio.gather(
        *(_batch(client, alice, *(forward if i % 2 else forward[::-1])) for i in range(8)),
        *(
            client.patch(f"/tasks/{first['id']}", json={"title": f"v{i}"}, headers=alice)
            for i in range(4)
        ),
    )
    assert [response.status_code for response in responses] == [200] * 12
    current = (await client.get(f"/tasks/{first['id']}", headers=alice)).json()
    # Every change took its own version: none was lost to a concurrent one.
    assert current["version"] == 1 + 1 + 4
