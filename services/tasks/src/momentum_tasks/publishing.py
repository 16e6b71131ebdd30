"""Publishing the tasks service's events: to the outbox, in the change's unit of work."""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from datetime import datetime
from typing import TypedDict

from sqlmodel.ext.asyncio.session import AsyncSession

from momentum_shared.events import (
    TASK_STREAM,
    CloudEvent,
    EventData,
    ProjectCreated,
    ProjectDeleted,
    ProjectUpdated,
    TaskCompleted,
    TaskCreated,
    TaskDeleted,
    TaskReopened,
    TaskUpdated,
)
from momentum_shared.outbox import enqueue
from momentum_tasks.models import OutboxEvent, Project, Task

SOURCE = "/momentum/tasks"
# The streams tasks publishes to (docs/spec/events.md §1): what its relays declare.
STREAMS = (TASK_STREAM,)


class _OrderedIds:
    """UUIDv7 event ids (RFC 9562), strictly increasing within the process.

    The outbox publishes the events of one moment in the order of their ids, and every
    event of a request has the request's time: increasing ids keep them in the order of
    the changes (a batch that completes and then reopens a task says so in that order).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = 0
        self._last_counter = 0

    def next(self) -> str:
        with self._lock:
            ms = time.time_ns() // 1_000_000
            if ms <= self._last_ms:
                ms, counter = self._last_ms, self._last_counter + 1
            else:
                counter = secrets.randbits(73)  # the top bit clear: room to count up
            self._last_ms, self._last_counter = ms, counter
        rand_a, rand_b = counter >> 62 & 0xFFF, counter & ((1 << 62) - 1)
        value = ms << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
        return str(uuid.UUID(int=value))


_event_ids = _OrderedIds()


def _emit(
    session: AsyncSession,
    data: EventData,
    *,
    owner_id: uuid.UUID,
    usertz: str | None,
    at: datetime,
    about: str,
    version: int,
) -> None:
    """``about`` is the partition key (``task/<id>``, ``project/<id>``); ``version`` the
    thing's version after the change, its event's sequence (a deletion: the last one + 1):
    one task's or project's events are numbered 1, 2, 3… in the order of its changes,
    whatever order several relays publish them in (docs/spec/events.md §2)."""
    # usertz is the token's tz when it names a real zone; absent otherwise, so analytics
    # falls back to the user's last known zone, not a guessed UTC (docs/spec/analytics.md, rule 1).
    enqueue(
        session,
        OutboxEvent,
        CloudEvent.of(
            data,
            source=SOURCE,
            subject=str(owner_id),
            usertz=usertz,
            time=at,
            id=_event_ids.next(),
            partitionkey=about,
            sequence=version,
        ),
    )


class _Sequenced(TypedDict):
    about: str
    version: int


def _task(task: Task, *, gone: bool = False) -> _Sequenced:
    return {"about": f"task/{task.id}", "version": task.version + 1 if gone else task.version}


def _project(project: Project, *, gone: bool = False) -> _Sequenced:
    return {
        "about": f"project/{project.id}",
        "version": project.version + 1 if gone else project.version,
    }


def task_created(session: AsyncSession, task: Task, *, usertz: str | None) -> None:
    data = TaskCreated(
        task_id=task.id,
        user_id=task.owner_id,
        priority=task.priority,  # type: ignore[arg-type]
        due_at=task.due_at,
        created_at=task.created_at,
        project_id=task.project_id,
    )
    _emit(session, data, owner_id=task.owner_id, usertz=usertz, at=task.created_at, **_task(task))


def task_updated(
    session: AsyncSession, task: Task, *, changed: list[str], usertz: str | None
) -> None:
    data = TaskUpdated(
        task_id=task.id,
        user_id=task.owner_id,
        changed=changed,
        version=task.version,
        project_id=task.project_id,
        priority=task.priority,  # type: ignore[arg-type]
    )
    _emit(session, data, owner_id=task.owner_id, usertz=usertz, at=task.updated_at, **_task(task))


def task_completed(
    session: AsyncSession,
    task: Task,
    *,
    usertz: str | None,
    due_at: datetime | None,
    recurring: bool,
    at: datetime,
) -> None:
    """``due_at``: the occurrence completed (a recurring task has moved on to the next one)."""
    data = TaskCompleted(
        task_id=task.id,
        user_id=task.owner_id,
        completed_at=at,
        due_at=due_at,
        project_id=task.project_id,
        recurring=recurring,
    )
    _emit(session, data, owner_id=task.owner_id, usertz=usertz, at=at, **_task(task))


def task_reopened(session: AsyncSession, task: Task, *, usertz: str | None) -> None:
    data = TaskReopened(task_id=task.id, user_id=task.owner_id, project_id=task.project_id)
    _emit(session, data, owner_id=task.owner_id, usertz=usertz, at=task.updated_at, **_task(task))


def task_deleted(session: AsyncSession, task: Task, *, usertz: str | None, at: datetime) -> None:
    data = TaskDeleted(task_id=task.id, user_id=task.owner_id, project_id=task.project_id)
    _emit(session, data, owner_id=task.owner_id, usertz=usertz, at=at, **_task(task, gone=True))


def project_created(session: AsyncSession, project: Project, *, usertz: str | None) -> None:
    data = ProjectCreated(project_id=project.id, user_id=project.owner_id)
    _emit(
        session,
        data,
        owner_id=project.owner_id,
        usertz=usertz,
        at=project.created_at,
        **_project(project),
    )


def project_updated(session: AsyncSession, project: Project, *, usertz: str | None) -> None:
    data = ProjectUpdated(project_id=project.id, user_id=project.owner_id)
    _emit(
        session,
        data,
        owner_id=project.owner_id,
        usertz=usertz,
        at=project.updated_at,
        **_project(project),
    )


def project_deleted(
    session: AsyncSession, project: Project, *, usertz: str | None, at: datetime
) -> None:
    data = ProjectDeleted(project_id=project.id, user_id=project.owner_id)
    _emit(
        session,
        data,
        owner_id=project.owner_id,
        usertz=usertz,
        at=at,
        **_project(project, gone=True),
    )
