"""Events of docs/spec/events.md, written to the outbox in the same transaction as the change."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from momentum_devtools.testing.issuer import TestIssuer
from momentum_shared.db import UnitOfWork
from momentum_shared.events import utcnow
from momentum_tasks import service
from momentum_tasks.models import Task
from momentum_tasks.repository import TaskRepository
from momentum_tasks.schemas import TaskCreate, TaskUpdate
from momentum_tasks.state import app_state
from services.tasks.tests.support import Events, Headers, NewTask

TASKS: sa.Table = Task.__table__  # type: ignore[attr-defined]


async def test_a_task_lifecycle_emits_one_event_per_change(
    client: httpx.AsyncClient,
    alice: Headers,
    alice_id: uuid.UUID,
    new_task: NewTask,
    outbox_events: Events,
) -> None:
    task = await new_task(alice, title="Plan trip", priority="high", due_at="2026-12-24T18:00:00Z")
    path = f"/tasks/{task['id']}"
    await client.patch(path, json={"tags": ["travel"], "priority": "low"}, headers=alice)
    done = (await client.post(f"{path}/complete", headers=alice)).json()
    await client.post(f"{path}/complete", headers=alice)  # no-op: no event
    await client.post(f"{path}/reopen", headers=alice)
    await client.delete(path, headers=alice)

    events = await outbox_events()
    assert [e.type for e in events] == [
        "tasks.task.created",
        "tasks.task.updated",
        "tasks.task.completed",
        "tasks.task.reopened",
        "tasks.task.deleted",
    ]
    for event in events:
        assert event.source == "/momentum/tasks"
        assert event.subject == str(alice_id)
        assert event.usertz == "Europe/Berlin"
        assert event.data["task_id"] == task["id"]
        assert event.data["user_id"] == str(alice_id)
        assert event.typed_data() is not None
        # Events never carry task text.
        assert "Plan trip" not in event.to_json().decode()
    created, updated, completed, reopened, deleted = events
    # Exactly the fields of docs/spec/events.md §3, no more (and so no task text).
    assert set(updated.data) == {
        "task_id",
        "user_id",
        "changed",
        "version",
        "project_id",
        "priority",
    }
    assert set(completed.data) == {
        "task_id",
        "user_id",
        "completed_at",
        "due_at",
        "project_id",
        "recurring",
    }
    assert completed.data["recurring"] is False  # a one-off task
    assert set(reopened.data) == {"task_id", "user_id", "project_id"}
    assert set(deleted.data) == {"task_id", "user_id", "project_id"}
    assert created.data == {
        "task_id": task["id"],
        "user_id": str(alice_id),
        "priority": "high",
        "due_at": "2026-12-24T18:00:00Z",
        "created_at": task["created_at"],
        "project_id": None,
    }
    assert updated.data["changed"] == ["priority", "tags"]
    assert updated.data["version"] == 2
    assert updated.data["priority"] == "low"  # the task's priority after the change
    assert completed.data["completed_at"] == done["completed_at"]
    assert completed.data["due_at"] == "2026-12-24T18:00:00Z"
    assert format(completed.time.isoformat()).startswith(done["completed_at"][:19])


@pytest.mark.parametrize("tz", [None, "", "Mars/Olympus_Mons"])
async def test_usertz_is_absent_without_a_valid_tz_claim(
    client: httpx.AsyncClient, issuer: TestIssuer, outbox_events: Events, tz: str | None
) -> None:
    token = issuer.mint(uuid.uuid4(), tz=tz)  # type: ignore[arg-type]
    response = await client.post(
        "/tasks", json={"title": "x"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 201
    (event,) = await outbox_events()
    assert event.usertz is None
    assert b"usertz" not in event.to_json()


async def test_a_rolled_back_change_emits_nothing(app: FastAPI, client: httpx.AsyncClient) -> None:
    actor = service.Actor(owner_id=uuid.uuid4(), usertz="UTC")

    async def create_then_fail() -> None:
        async with UnitOfWork(app_state(app).session_factory) as uow:
            await service.create_task(
                TaskRepository(uow.session),
                actor=actor,
                body=TaskCreate(title="never"),
                idempotency_key="k",
                idempotency_ttl=timedelta(hours=24),
                now=utcnow(),
            )
            raise RuntimeError("the request failed after the change")

    with pytest.raises(RuntimeError):
        await create_then_fail()
    async with app_state(app).engine.connect() as connection:
        tasks = (await connection.execute(sa.select(sa.func.count()).select_from(TASKS))).scalar()
    assert tasks == 0
    assert await _outbox_count(app) == 0


async def test_a_rolled_back_update_emits_nothing(
    app: FastAPI, client: httpx.AsyncClient, alice: Headers, alice_id: uuid.UUID, new_task: NewTask
) -> None:
    task = await new_task(alice, title="before")
    actor = service.Actor(owner_id=alice_id, usertz="UTC")

    async def update_then_fail() -> None:
        async with UnitOfWork(app_state(app).session_factory) as uow:
            repo = TaskRepository(uow.session)
            task_id = uuid.UUID(task["id"])
            now = utcnow()
            patch = TaskUpdate(title="after")
            await service.update_task(
                repo, actor=actor, task_id=task_id, patch=patch, if_match=None, now=now
            )
            await service.complete_task(repo, actor=actor, task_id=task_id, if_match=None, now=now)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await update_then_fail()
    current = (await client.get(f"/tasks/{task['id']}", headers=alice)).json()
    assert current == task
    assert await _outbox_count(app) == 1  # only the creation


async def _outbox_count(app: FastAPI) -> int:
    async with app_state(app).engine.connect() as connection:
        count = await connection.execute(sa.text("SELECT count(*) FROM outbox"))
        return int(count.scalar_one())
