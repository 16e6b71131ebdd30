"""Projects of docs/spec/tasks.md §6: unique names ignoring case, listing, versions, tasks."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from momentum_devtools.testing.issuer import TestIssuer
from services.tasks.tests.support import Events, Headers, NewTask


async def _project(client: httpx.AsyncClient, headers: Headers, **body: Any) -> dict[str, Any]:
    body.setdefault("name", "Home")
    response = await client.post("/projects", json=body, headers=headers)
    assert response.status_code == 201, response.text
    project: dict[str, Any] = response.json()
    return project


async def _names(client: httpx.AsyncClient, headers: Headers, **params: Any) -> list[str]:
    response = await client.get("/projects", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return [project["name"] for project in response.json()["items"]]


async def test_create_returns_the_project_with_location_and_etag(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    response = await client.post(
        "/projects", json={"name": "Home", "color": "#1E90FF"}, headers=alice
    )
    assert response.status_code == 201
    project = response.json()
    assert response.headers["Location"] == f"/projects/{project['id']}"
    assert response.headers["ETag"] == '"1"'
    assert project["name"] == "Home"
    assert project["color"] == "#1e90ff"
    assert project["archived"] is False
    assert project["version"] == 1
    assert project["created_at"] == project["updated_at"]
    assert project["created_at"].endswith("Z")
    fetched = await client.get(response.headers["Location"], headers=alice)
    assert fetched.status_code == 200
    assert fetched.json() == project
    assert fetched.headers["ETag"] == '"1"'


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "n" * 121},
        {"name": "ok", "color": "blue"},
        {"name": "ok", "color": "#12345"},
        {"name": "ok", "color": "#1234567"},
        {"name": "ok", "archived": "maybe"},
        {"name": "ok", "archived": 0},
        {"name": "ok", "owner_id": "someone"},
        {"name": "nul\u0000"},
    ],
)
async def test_an_invalid_project_is_422(
    client: httpx.AsyncClient, alice: Headers, body: dict[str, Any]
) -> None:
    response = await client.post("/projects", json=body, headers=alice)
    assert response.status_code == 422
    assert await _names(client, alice, archived="any") == []


async def test_names_are_unique_per_user_ignoring_case(
    client: httpx.AsyncClient, alice: Headers, bob: Headers
) -> None:
    await _project(client, alice, name="Straße")
    for clash in ("straße", "STRASSE", "Strasse"):
        response = await client.post("/projects", json={"name": clash}, headers=alice)
        assert response.status_code == 409, clash
        assert response.headers["content-type"].startswith("application/problem+json")
    await _project(client, bob, name="Straße")  # another user's names never clash
    other = await _project(client, alice, name="Work")
    renamed = await client.patch(
        f"/projects/{other['id']}", json={"name": "STRASSE"}, headers=alice
    )
    assert renamed.status_code == 409
    assert (await client.get(f"/projects/{other['id']}", headers=alice)).json() == other
    recased = await client.patch(f"/projects/{other['id']}", json={"name": "WORK"}, headers=alice)
    assert recased.status_code == 200
    assert recased.json()["name"] == "WORK"


async def test_concurrent_creates_of_one_name_make_one_project(
    client: httpx.AsyncClient, alice: Headers, outbox_events: Events
) -> None:
    spellings = ["Garden", "garden", "GARDEN", "GaRdEn"] * 2
    responses = await asyncio.gather(
        *(client.post("/projects", json={"name": name}, headers=alice) for name in spellings)
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] + [409] * (len(spellings) - 1)
    assert len(await _names(client, alice, archived="any")) == 1
    assert [e.type for e in await outbox_events()] == ["tasks.project.created"]


async def test_projects_are_listed_by_name_ignoring_case_with_the_archived_filter(
    client: httpx.AsyncClient, alice: Headers, bob: Headers
) -> None:
    for name in ("beta", "Alpha", "delta", "Gamma"):
        await _project(client, alice, name=name)
    await _project(client, alice, name="Charlie", archived=True)
    await _project(client, bob, name="Bob's")
    assert await _names(client, alice) == ["Alpha", "beta", "delta", "Gamma"]
    assert await _names(client, alice, archived="false") == ["Alpha", "beta", "delta", "Gamma"]
    assert await _names(client, alice, archived="true") == ["Charlie"]
    assert await _names(client, alice, archived="any") == [
        "Alpha",
        "beta",
        "Charlie",
        "delta",
        "Gamma",
    ]
    bad = await client.get("/projects", params={"archived": "yes"}, headers=alice)
    assert bad.status_code == 422


async def test_paging_through_projects_returns_each_exactly_once(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    names = [f"Project {i:02d}" for i in range(7)]
    for name in reversed(names):
        await _project(client, alice, name=name)
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3, "archived": "any"}
        if cursor is not None:
            params["cursor"] = cursor
        page = (await client.get("/projects", params=params, headers=alice)).json()
        seen.extend(project["name"] for project in page["items"])
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == names
    assert pages == 3
    # A cursor belongs to its list: another archived filter, or a tampered one, is a 400.
    first = (await client.get("/projects", params={"limit": 3}, headers=alice)).json()
    other = await client.get(
        "/projects", params={"archived": "any", "cursor": first["next_cursor"]}, headers=alice
    )
    assert other.status_code == 400
    tampered = await client.get(
        "/projects", params={"cursor": "x" + first["next_cursor"]}, headers=alice
    )
    assert tampered.status_code == 400


async def test_changing_a_project_grows_its_version_and_honours_if_match(
    client: httpx.AsyncClient, alice: Headers, outbox_events: Events
) -> None:
    project = await _project(client, alice, color="#000000")
    path = f"/projects/{project['id']}"
    same = await client.patch(path, json={"name": "Home", "color": "#000000"}, headers=alice)
    assert same.json()["version"] == 1  # nothing changed: same version, no event
    archived = await client.patch(
        path, json={"archived": True, "color": None}, headers={**alice, "If-Match": '"1"'}
    )
    assert archived.status_code == 200
    assert archived.headers["ETag"] == '"2"'
    assert archived.json()["archived"] is True
    assert archived.json()["color"] is None
    stale = await client.patch(path, json={"name": "x"}, headers={**alice, "If-Match": '"1"'})
    assert stale.status_code == 412
    assert stale.headers["ETag"] == '"2"'
    for body in ({"name": None}, {"archived": None}, {"version": 3}):
        assert (await client.patch(path, json=body, headers=alice)).status_code == 422
    stale_delete = await client.delete(path, headers={**alice, "If-Match": '"1"'})
    assert stale_delete.status_code == 412
    assert [e.type for e in await outbox_events()] == [
        "tasks.project.created",
        "tasks.project.updated",
    ]


async def test_another_users_project_is_404_everywhere(
    client: httpx.AsyncClient, alice: Headers, bob: Headers
) -> None:
    bobs = await _project(client, bob, name="Private")
    path = f"/projects/{bobs['id']}"
    assert (await client.get(path, headers=alice)).status_code == 404
    assert (await client.patch(path, json={"name": "Mine"}, headers=alice)).status_code == 404
    assert (await client.delete(path, headers=alice)).status_code == 404
    assert (await client.get("/projects/not-a-uuid", headers=alice)).status_code == 404
    assert (await client.get(path, headers=bob)).json() == bobs


async def test_tasks_belong_to_a_project_only_of_their_owner(
    client: httpx.AsyncClient, alice: Headers, bob: Headers, new_task: NewTask
) -> None:
    mine = await _project(client, alice, name="Mine")
    bobs = await _project(client, bob, name="Bob's")
    task = await new_task(alice, title="In mine", project_id=mine["id"])
    assert task["project_id"] == mine["id"]
    answers = []
    for project_id in (bobs["id"], str(uuid.uuid4())):
        response = await client.post(
            "/tasks", json={"title": "x", "project_id": project_id}, headers=alice
        )
        assert response.status_code == 422
        answers.append(response.json()["detail"])
        moved = await client.patch(
            f"/tasks/{task['id']}", json={"project_id": project_id}, headers=alice
        )
        assert moved.status_code == 422
    assert answers[0] == answers[1]  # someone else's and a missing project look the same
    cleared = await client.patch(f"/tasks/{task['id']}", json={"project_id": None}, headers=alice)
    assert cleared.status_code == 200
    assert cleared.json()["project_id"] is None
    assert cleared.json()["version"] == 2


async def test_tasks_can_be_listed_by_project_or_without_one(
    client: httpx.AsyncClient, alice: Headers, new_task: NewTask
) -> None:
    home = await _project(client, alice, name="Home")
    work = await _project(client, alice, name="Work")
    at_home = await new_task(alice, title="Dishes", project_id=home["id"])
    at_work = await new_task(alice, title="Report", project_id=work["id"])
    loose = await new_task(alice, title="Call mum")

    async def titles(**params: Any) -> list[str]:
        response = await client.get("/tasks", params=params, headers=alice)
        assert response.status_code == 200, response.text
        return [task["title"] for task in response.json()["items"]]

    assert await titles(project_id=home["id"]) == [at_home["title"]]
    assert await titles(project_id=work["id"], sort="due_at") == [at_work["title"]]
    assert await titles(project_id="none") == [loose["title"]]
    assert await titles(project_id=str(uuid.uuid4())) == []
    bad = await client.get("/tasks", params={"project_id": "nothing"}, headers=alice)
    assert bad.status_code == 422
    # A cursor is bound to its project filter.
    page = (await client.get("/tasks", params={"limit": 1}, headers=alice)).json()
    other = await client.get(
        "/tasks",
        params={"limit": 1, "project_id": "none", "cursor": page["next_cursor"]},
        headers=alice,
    )
    assert other.status_code == 400


async def test_deleting_a_project_deletes_its_tasks_each_with_an_event(
    client: httpx.AsyncClient,
    alice: Headers,
    alice_id: uuid.UUID,
    new_task: NewTask,
    outbox_events: Events,
) -> None:
    project = await _project(client, alice, name="Move house")
    inside = [await new_task(alice, title=f"box {i}", project_id=project["id"]) for i in range(3)]
    outside = await new_task(alice, title="Stays")
    before = len(await outbox_events())
    response = await client.delete(
        f"/projects/{project['id']}", headers={**alice, "If-Match": '"1"'}
    )
    assert response.status_code == 204
    assert (await client.get(f"/projects/{project['id']}", headers=alice)).status_code == 404
    for task in inside:
        assert (await client.get(f"/tasks/{task['id']}", headers=alice)).status_code == 404
    assert (await client.get(f"/tasks/{outside['id']}", headers=alice)).json() == outside
    events = (await outbox_events())[before:]
    assert [e.type for e in events] == ["tasks.task.deleted"] * 3 + ["tasks.project.deleted"]
    assert {e.data["task_id"] for e in events[:3]} == {task["id"] for task in inside}
    assert {e.data["project_id"] for e in events[:3]} == {project["id"]}
    assert events[3].data == {"project_id": project["id"], "user_id": str(alice_id)}


async def test_project_events_carry_only_ids_and_task_events_their_project(
    client: httpx.AsyncClient,
    alice: Headers,
    alice_id: uuid.UUID,
    new_task: NewTask,
    outbox_events: Events,
) -> None:
    project = await _project(client, alice, name="Secret plans")
    await client.patch(f"/projects/{project['id']}", json={"color": "#ff0000"}, headers=alice)
    task = await new_task(alice, project_id=project["id"])
    await client.post(f"/tasks/{task['id']}/complete", headers=alice)
    events = await outbox_events()
    assert [e.type for e in events] == [
        "tasks.project.created",
        "tasks.project.updated",
        "tasks.task.created",
        "tasks.task.completed",
    ]
    for event in events[:2]:
        assert event.data == {"project_id": project["id"], "user_id": str(alice_id)}
        assert event.subject == str(alice_id)
        assert "Secret plans" not in event.to_json().decode()
        assert event.typed_data() is not None
    assert {e.data["project_id"] for e in events[2:]} == {project["id"]}


async def test_a_repeated_idempotency_key_replays_the_project(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    headers = {**alice, "Idempotency-Key": "project-1"}
    first = await client.post("/projects", json={"name": "Once"}, headers=headers)
    again = await client.post("/projects", json={"name": "Once"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["ETag"] == first.headers["ETag"]
    other = await client.post("/projects", json={"name": "Twice"}, headers=headers)
    assert other.status_code == 422
    assert await _names(client, alice) == ["Once"]


async def test_a_batch_cannot_put_a_task_in_someone_elses_project(
    client: httpx.AsyncClient, alice: Headers, bob: Headers
) -> None:
    bobs = await _project(client, bob, name="Bob's")
    mine = await _project(client, alice, name="Mine")
    response = await client.post(
        "/tasks/batch",
        json={
            "operations": [
                {"op": "create", "data": {"title": "ok", "project_id": mine["id"]}},
                {"op": "create", "data": {"title": "no", "project_id": bobs["id"]}},
            ]
        },
        headers=alice,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["index"] == 1
    listed = await client.get("/tasks", headers=alice)
    assert listed.json()["items"] == []


async def test_projects_need_the_task_scopes(
    client: httpx.AsyncClient, issuer: TestIssuer, alice_id: uuid.UUID
) -> None:
    reader = issuer.bearer(alice_id, scope="tasks:read")
    writer = issuer.bearer(alice_id, scope="tasks:write")
    denied = await client.post("/projects", json={"name": "x"}, headers=reader)
    assert denied.status_code == 403
    assert 'scope="tasks:write"' in denied.headers["WWW-Authenticate"]
    assert (await client.get("/projects", headers=writer)).status_code == 403
    assert (await client.get("/projects", headers=reader)).status_code == 200


async def test_no_task_outlives_its_project_under_concurrent_creates(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    project = await _project(client, alice, name="Short-lived")
    body = {"title": "racing", "project_id": project["id"]}
    answers = await asyncio.gather(
        *(client.post("/tasks", json=body, headers=alice) for _ in range(4)),
        client.delete(f"/projects/{project['id']}", headers=alice),
        *(client.post("/tasks", json=body, headers=alice) for _ in range(4)),
    )
    assert answers[4].status_code == 204
    assert {answer.status_code for answer in answers[:4] + answers[5:]} <= {201, 422}
    listed = await client.get("/tasks", params={"project_id": project["id"]}, headers=alice)
    assert listed.json()["items"] == []
    assert (await client.get("/tasks", headers=alice)).json()["items"] == []


async def test_concurrent_renames_to_one_name_leave_one_project_with_it(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    projects = [await _project(client, alice, name=f"Draft {i}") for i in range(4)]
    responses = await asyncio.gather(
        *(
            client.patch(f"/projects/{project['id']}", json={"name": "Final"}, headers=alice)
            for project in projects
        )
    )
    assert sorted(response.status_code for response in responses) == [200, 409, 409, 409]
    names = await _names(client, alice)
    assert names.count("Final") == 1
    assert len(names) == 4
