"""Business rules of tasks: versions and preconditions, idempotent creation, events per change."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from momentum_shared.errors import Conflict, NotFound, PreconditionFailed, UnprocessableEntity
from momentum_tasks import publishing, recurrence
from momentum_tasks.models import NO_DUE_DATE, Task
from momentum_tasks.pagination import CursorCodec, Position
from momentum_tasks.repository import TaskRepository, TaskRow
from momentum_tasks.schemas import (
    TaskCreate,
    TaskFilters,
    TaskPage,
    TaskPublic,
    TaskSort,
    TaskUpdate,
)
from momentum_tasks.search import search_terms

# PATCH may change these; `status` only moves through complete and reopen.
EDITABLE_FIELDS = (
    "title",
    "description",
    "priority",
    "due_at",
    "tags",
    "project_id",
    "recurrence",
)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is asking, from the verified token: the owner of every row touched, and their zone."""

    owner_id: uuid.UUID
    usertz: str | None

    @property
    def zone(self) -> tzinfo:
        """Where the actor's recurring tasks are expanded: the token's zone, else UTC."""
        return ZoneInfo(self.usertz) if self.usertz is not None else UTC


@dataclass(frozen=True, slots=True)
class Created:
    """The response of ``POST /tasks``: freshly made, or replayed for a repeated key."""

    status_code: int
    body: dict[str, Any]


def etag(version: int) -> str:
    return f'"{version}"'


def parse_if_match(header: str | None) -> set[str] | None:
    """The entity tags (unquoted) that ``If-Match`` accepts; ``None`` when absent or ``*``."""
    if header is None or header.strip() == "*":
        return None
    tags: set[str] = set()
    for raw in header.split(","):
        tag = raw.strip()
        if tag.startswith("W/"):
            continue  # If-Match uses the strong comparison: weak tags never match
        if len(tag) >= 2 and tag[0] == tag[-1] == '"':
            tag = tag[1:-1]
        tags.add(tag)
    return tags


def _check_precondition(task: Task, if_match: str | None) -> None:
    # Compared as opaque strings (RFC 9110 strong comparison), never parsed as numbers:
    # "01" is not "1", and no header text can make the comparison fail with an error.
    accepted = parse_if_match(if_match)
    if accepted is not None and str(task.version) not in accepted:
        raise PreconditionFailed(
            f"the task is at version {task.version}; fetch it again and retry",
            headers={"ETag": etag(task.version)},
        )


def to_public(task: Task | TaskRow) -> TaskPublic:
    return TaskPublic.model_validate(task, from_attributes=True)


def _request_hash(body: TaskCreate) -> str:
    values = body.model_dump(mode="json")
    # Keys stored before projects and recurrence existed keep their hash.
    for name in ("project_id", "recurrence"):
        if values[name] is None:
            del values[name]
    canonical = json.dumps(values, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def _locked_task(repo: TaskRepository, actor: Actor, task_id: uuid.UUID) -> Task:
    await repo.begin_write(owner_id=actor.owner_id)
    task = await repo.get(owner_id=actor.owner_id, task_id=task_id, for_update=True)
    if task is None:
        raise NotFound("no such task")
    return task


async def _require_project(repo: TaskRepository, actor: Actor, project_id: uuid.UUID) -> None:
    # Someone else's project and a missing one are the same 422 (docs/spec/tasks.md §6).
    project = await repo.get_project(owner_id=actor.owner_id, project_id=project_id, lock="share")
    if project is None:
        raise UnprocessableEntity(
            "project_id names no project of yours",
            extra={
                "errors": [
                    {"loc": ["body", "project_id"], "msg": "no such project", "type": "value_error"}
                ]
            },
        )


def _require_due_date(task: Task) -> None:
    # A series starts at its due date and moves it (docs/spec/tasks.md §2.3).
    if task.recurrence is not None and task.due_at is None:
        raise UnprocessableEntity(
            "a recurring task needs a due_at",
            extra={
                "errors": [
                    {
                        "loc": ["body", "due_at"],
                        "msg": "a recurring task needs a due_at",
                        "type": "value_error",
                    }
                ]
            },
        )


def _start_series(task: Task) -> None:
    """Begin the task's series at its current due date (COUNT counts from here)."""
    task.recurrence_start = task.due_at if task.recurrence is not None else None
    task.recurrence_completed = 0


async def get_task(repo: TaskRepository, *, actor: Actor, task_id: uuid.UUID) -> TaskRow:
    task = await repo.read(owner_id=actor.owner_id, task_id=task_id)
    if task is None:
        raise NotFound("no such task")
    return task


async def replay_or_claim(
    repo: TaskRepository,
    *,
    actor: Actor,
    key: str | None,
    request_hash: str,
    ttl: timedelta,
    now: datetime,
) -> Created | None:
    """The stored response for a repeated ``Idempotency-Key``, or ``None`` once it is claimed.

    The claim is a row in the request's own transaction: a request that fails rolls it back,
    so a retry with the same key runs again (docs/spec/README.md §2.9).
    """
    if key is None:
        return None
    earlier = await repo.claim_idempotency_key(
        owner_id=actor.owner_id,
        key=key,
        request_hash=request_hash,
        now=now,
        expired_before=now - ttl,
    )
    if earlier is None:
        return None
    if earlier.request_hash != request_hash:
        raise UnprocessableEntity("this Idempotency-Key was already used with a different body")
    if earlier.response_body is None or earlier.status_code is None:
        raise Conflict("a request with this Idempotency-Key is still in progress")
    return Created(earlier.status_code, json.loads(earlier.response_body))


async def remember_response(
    repo: TaskRepository,
    *,
    actor: Actor,
    key: str | None,
    created: Created,
    resource_id: uuid.UUID | None = None,
) -> Created:
    """Store the response of a request that claimed ``key``, for its replays (``resource_id``:
    the task it created, when it created one task)."""
    if key is not None:
        await repo.record_idempotent_response(
            owner_id=actor.owner_id,
            key=key,
            task_id=resource_id,
            status_code=created.status_code,
            body=json.dumps(created.body),
        )
    return created


async def create_task(
    repo: TaskRepository,
    *,
    actor: Actor,
    body: TaskCreate,
    idempotency_key: str | None,
    idempotency_ttl: timedelta,
    now: datetime,
) -> Created:
    await repo.begin_write(owner_id=actor.owner_id)
    replay = await replay_or_claim(
        repo,
        actor=actor,
        key=idempotency_key,
        request_hash=_request_hash(body),
        ttl=idempotency_ttl,
        now=now,
    )
    if replay is not None:
        return replay
    task = await add_task(repo, actor=actor, body=body, now=now)
    return await remember_response(
        repo,
        actor=actor,
        key=idempotency_key,
        created=Created(201, to_public(task).model_dump(mode="json")),
        resource_id=task.id,
    )


async def add_task(repo: TaskRepository, *, actor: Actor, body: TaskCreate, now: datetime) -> Task:
    """Create one task and its event (the part of ``POST /tasks`` a batch repeats)."""
    await repo.begin_write(owner_id=actor.owner_id)
    if body.project_id is not None:
        await _require_project(repo, actor, body.project_id)
    task = Task(
        id=uuid.uuid4(),
        owner_id=actor.owner_id,
        title=body.title,
        title_folded=body.title.lower(),
        description=body.description,
        status="open",
        priority=body.priority,
        due_at=body.due_at,
        due_sort=body.due_at or NO_DUE_DATE,
        tags=list(body.tags),
        project_id=body.project_id,
        recurrence=body.recurrence,
        created_at=now,
        updated_at=now,
        completed_at=None,
        version=1,
        change_seq=await repo.next_change(owner_id=actor.owner_id),
    )
    _require_due_date(task)
    _start_series(task)
    await repo.add(task)
    publishing.task_created(repo.session, task, usertz=actor.usertz)
    return task


async def update_task(
    repo: TaskRepository,
    *,
    actor: Actor,
    task_id: uuid.UUID,
    patch: TaskUpdate,
    if_match: str | None,
    now: datetime,
) -> Task:
    task = await _locked_task(repo, actor, task_id)
    _check_precondition(task, if_match)
    changed: list[str] = []
    for name in EDITABLE_FIELDS:
        if name not in patch.model_fields_set:
            continue
        value = getattr(patch, name)
        if value != getattr(task, name):
            changed.append(name)
            setattr(task, name, list(value) if name == "tags" else value)
    if not changed:
        return task  # nothing changed: same version, no event
    _require_due_date(task)
    if "recurrence" in changed or ("due_at" in changed and task.recurrence is not None):
        _start_series(task)
    if "project_id" in changed and task.project_id is not None:
        await _require_project(repo, actor, task.project_id)
    if "title" in changed:
        task.title_folded = task.title.lower()
    if "due_at" in changed:
        task.due_sort = task.due_at or NO_DUE_DATE
    if "tags" in changed:
        await repo.replace_tags(owner_id=actor.owner_id, task_id=task.id, tags=task.tags)
    task.version += 1
    task.updated_at = now
    task.change_seq = await repo.next_change(owner_id=actor.owner_id)
    await repo.flush()
    publishing.task_updated(repo.session, task, changed=changed, usertz=actor.usertz)
    return task


async def complete_task(
    repo: TaskRepository,
    *,
    actor: Actor,
    task_id: uuid.UUID,
    if_match: str | None,
    now: datetime,
) -> Task:
    task = await _locked_task(repo, actor, task_id)
    _check_precondition(task, if_match)
    if task.status == "done":
        return task  # already done: changes nothing, emits nothing
    occurrence = task.due_at
    following = _next_occurrence(task, actor) if task.recurrence is not None else None
    if task.recurrence is not None:
        task.recurrence_completed += 1
        task.last_completed_at = now
    if following is None:
        task.status = "done"
        task.completed_at = now
    else:
        task.due_at = following
        task.due_sort = following
    task.updated_at = now
    task.version += 1
    task.change_seq = await repo.next_change(owner_id=actor.owner_id)
    await repo.flush()
    publishing.task_completed(
        repo.session,
        task,
        usertz=actor.usertz,
        due_at=occurrence,
        recurring=task.recurrence is not None,
        at=now,
    )
    return task


def _next_occurrence(task: Task, actor: Actor) -> datetime | None:
    """The due date after the one being completed, or ``None`` when the series is over."""
    assert task.recurrence is not None
    assert task.due_at is not None  # a recurring task always has one (_require_due_date)
    return recurrence.next_occurrence(
        recurrence.parse(task.recurrence),
        start=task.recurrence_start or task.due_at,
        after=task.due_at,
        completed=task.recurrence_completed + 1,
        zone=actor.zone,
    )


async def reopen_task(
    repo: TaskRepository,
    *,
    actor: Actor,
    task_id: uuid.UUID,
    if_match: str | None,
    now: datetime,
) -> Task:
    task = await _locked_task(repo, actor, task_id)
    _check_precondition(task, if_match)
    if task.status == "open":
        return task  # already open: nothing to reopen
    task.status = "open"
    task.completed_at = None
    if task.recurrence is not None and task.recurrence_completed > 0:
        task.recurrence_completed -= 1  # its last occurrence is open again
    task.updated_at = now
    task.version += 1
    task.change_seq = await repo.next_change(owner_id=actor.owner_id)
    await repo.flush()
    publishing.task_reopened(repo.session, task, usertz=actor.usertz)
    return task


async def delete_task(
    repo: TaskRepository,
    *,
    actor: Actor,
    task_id: uuid.UUID,
    if_match: str | None,
    now: datetime,
) -> None:
    task = await _locked_task(repo, actor, task_id)
    _check_precondition(task, if_match)
    await remove_task(repo, actor=actor, task=task, now=now)


async def remove_task(repo: TaskRepository, *, actor: Actor, task: Task, now: datetime) -> None:
    """Delete a locked task, leave its tombstone for the changes feed and emit its event."""
    await repo.delete(owner_id=actor.owner_id, task_id=task.id)
    await repo.add_tombstone(
        owner_id=actor.owner_id,
        task_id=task.id,
        change_seq=await repo.next_change(owner_id=actor.owner_id),
        deleted_at=now,
    )
    publishing.task_deleted(repo.session, task, usertz=actor.usertz, at=now)


def _query_error(parameter: str, message: str) -> dict[str, object]:
    return {"loc": ["query", parameter], "msg": message, "type": "value_error"}


def _position(task: TaskRow, sort: TaskSort) -> Position:
    if sort is TaskSort.relevance:
        return Position(key=float(task.search_score), id=task.id)
    if sort in (TaskSort.newest_first, TaskSort.oldest_first):
        return Position(key=task.created_at, id=task.id)
    return Position(key=task.due_sort, id=task.id)


async def list_tasks(
    repo: TaskRepository,
    *,
    actor: Actor,
    filters: TaskFilters,
    sort: TaskSort,
    limit: int,
    cursor: str | None,
    codec: CursorCodec,
) -> TaskPage:
    if filters.search is not None and search_terms(filters.search) is None:
        raise UnprocessableEntity(
            "search has no words to look for: only letters and digits are searched, and"
            " common words such as 'the' are ignored",
            extra={"errors": [_query_error("search", "has no words to look for")]},
        )
    if sort is TaskSort.relevance and filters.search is None:
        raise UnprocessableEntity(
            "sort=relevance needs a search",
            extra={"errors": [_query_error("sort", "relevance is only allowed with search")]},
        )
    after = None
    if cursor is not None:
        after = codec.decode(cursor, owner_id=actor.owner_id, sort=sort, filters=filters)
    rows = await repo.list(
        owner_id=actor.owner_id, filters=filters, sort=sort, after=after, limit=limit
    )
    items = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        next_cursor = codec.encode(
            owner_id=actor.owner_id,
            sort=sort,
            filters=filters,
            position=_position(items[-1], sort),
        )
    return TaskPage(items=[to_public(task) for task in items], next_cursor=next_cursor)
