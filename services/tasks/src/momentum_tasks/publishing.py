"""Publishing the tasks service's events: to the outbox, in the change's unit of work."""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from momentum_shared.events import (
    TASK_STREAM,
    CloudEvent,
    EventData,
    TaskCompleted,
    TaskCreated,
    TaskDeleted,
    TaskReopened,
    TaskUpdated,
)
from momentum_shared.outbox import enqueue
from momentum_tasks.models import OutboxEvent, Task

SOURCE = "/momentum/tasks"
# The streams tasks publishes to (docs/spec/events.md §1): what its relays declare.
STREAMS = (TASK_STREAM,)


def _emit(
    session: AsyncSession, data: EventData, *, task: Task, usertz: str | None, at: datetime
) -> None:
    # usertz is the token's tz when it names a real zone; absent otherwise, so analytics
    # falls back to the user's last known zone, not a guessed UTC (docs/spec/analytics.md, rule 1).
    enqueue(
        session,
        OutboxEvent,
        CloudEvent.of(data, source=SOURCE, subject=str(task.owner_id), usertz=usertz, time=at),
    )


def task_created(session: AsyncSession, task: Task, *, usertz: str | None) -> None:
    data = TaskCreated(
        task_id=task.id,
        user_id=task.owner_id,
        priority=task.priority,  # type: ignore[arg-type]
        due_at=task.due_at,
        created_at=task.created_at,
    )
    _emit(session, data, task=task, usertz=usertz, at=task.created_at)


def task_updated(
    session: AsyncSession, task: Task, *, changed: list[str], usertz: str | None
) -> None:
    data = TaskUpdated(
        task_id=task.id, user_id=task.owner_id, changed=changed, version=task.version
    )
    _emit(session, data, task=task, usertz=usertz, at=task.updated_at)


def task_completed(session: AsyncSession, task: Task, *, usertz: str | None) -> None:
    assert task.completed_at is not None
    data = TaskCompleted(
        task_id=task.id, user_id=task.owner_id, completed_at=task.completed_at, due_at=task.due_at
    )
    _emit(session, data, task=task, usertz=usertz, at=task.completed_at)


def task_reopened(session: AsyncSession, task: Task, *, usertz: str | None) -> None:
    data = TaskReopened(task_id=task.id, user_id=task.owner_id)
    _emit(session, data, task=task, usertz=usertz, at=task.updated_at)


def task_deleted(session: AsyncSession, task: Task, *, usertz: str | None, at: datetime) -> None:
    data = TaskDeleted(task_id=task.id, user_id=task.owner_id)
    _emit(session, data, task=task, usertz=usertz, at=at)
