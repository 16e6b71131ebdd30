"""Batches of task operations (docs/spec/tasks.md §5): in order, in one transaction, all or nothing.

Each operation runs through the same service function as its single-task route, so a batch
follows exactly the same rules (versions, If-Match, events). The first operation that fails
stops the batch; the request's unit of work then rolls back every change, the events in the
outbox with them. The answer lists that operation's errors and those of every later operation
whose shape or data is invalid (what can be known without applying it).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ValidationError

from momentum_shared.errors import (
    Conflict,
    NotFound,
    PreconditionFailed,
    ProblemError,
    UnprocessableEntity,
)
from momentum_tasks import service
from momentum_tasks.repository import TaskRepository
from momentum_tasks.schemas import BatchOperation, BatchRequest, TaskCreate, TaskUpdate
from momentum_tasks.service import Actor, Created

# The statuses a failed batch can answer: those of the operation that failed.
_FAILURES: dict[int, type[ProblemError]] = {
    404: NotFound,
    409: Conflict,
    412: PreconditionFailed,
    422: UnprocessableEntity,
}
_ERROR_TYPES = {
    404: "not_found",
    409: "conflict",
    412: "precondition_failed",
    422: "value_error",
}
_TAKES_ID = frozenset({"update", "complete", "reopen", "delete"})
_TAKES_DATA: dict[str, type[BaseModel]] = {"create": TaskCreate, "update": TaskUpdate}


@dataclass(frozen=True, slots=True)
class _Step:
    """One operation, validated: what to do, or the error it answers when its turn comes."""

    index: int
    op: str
    task_id: uuid.UUID | None
    body: BaseModel | None
    if_match: str | None
    errors: tuple[dict[str, Any], ...] = ()


def _invalid(index: int, detail: str, *, loc: list[str | int] | None = None) -> dict[str, Any]:
    path: list[str | int] = ["body", "operations", index, *(loc or [])]
    return {
        "index": index,
        "status": 422,
        "detail": detail,
        "loc": [str(part) for part in path],
        "msg": detail,
        "type": "value_error",
    }


def _prepare(index: int, operation: BatchOperation) -> _Step:
    errors: list[dict[str, Any]] = []
    task_id: uuid.UUID | None = None
    if operation.op in _TAKES_ID:
        if operation.id is None:
            errors.append(_invalid(index, f"{operation.op} needs the task's id", loc=["id"]))
        else:
            try:
                task_id = uuid.UUID(operation.id)
            except ValueError:
                task_id = None  # names no task: 404 when its turn comes, as a path would
    elif operation.id is not None:
        errors.append(_invalid(index, "create takes no id", loc=["id"]))
    if operation.op == "create" and operation.if_match is not None:
        errors.append(_invalid(index, "create takes no if_match", loc=["if_match"]))
    model = _TAKES_DATA.get(operation.op)
    body: BaseModel | None = None
    if model is None:
        if operation.data is not None:
            errors.append(_invalid(index, f"{operation.op} takes no data", loc=["data"]))
    elif operation.data is None:
        errors.append(_invalid(index, f"{operation.op} needs data", loc=["data"]))
    else:
        try:
            body = model.model_validate(operation.data)
        except ValidationError as exc:
            for error in exc.errors():
                # The member and any list index; not the tags pydantic adds per union arm.
                where = tuple(error.get("loc", ()))
                loc = ["data", *where[:1], *(part for part in where[1:] if isinstance(part, int))]
                entry = _invalid(index, str(error.get("msg", "")), loc=loc)
                entry["type"] = str(error.get("type", "value_error"))
                errors.append(entry)
    return _Step(index, operation.op, task_id, body, operation.if_match, tuple(errors))


def _request_hash(steps: list[_Step], request: BatchRequest) -> str:
    # Compared after validation, like the body of POST /tasks (docs/spec/tasks.md §4); the
    # route is part of the hash, so a key used on POST /tasks is another body here.
    canonical: list[Any] = []
    for step, operation in zip(steps, request.operations, strict=True):
        data = operation.data
        if step.body is not None:
            data = step.body.model_dump(
                mode="json", exclude_unset=isinstance(step.body, TaskUpdate)
            )
            if isinstance(step.body, TaskCreate) and data["recurrence"] is None:
                del data["recurrence"]  # keys stored before recurrence existed keep their hash
        canonical.append(
            {"op": operation.op, "id": operation.id, "if_match": operation.if_match, "data": data}
        )
    text = json.dumps(["POST /tasks/batch", canonical], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _later_errors(steps: list[_Step], index: int) -> list[dict[str, Any]]:
    """What is wrong with the operations after ``index`` whatever the tasks hold (their
    shape and data), listed with the failure though the batch stopped before them."""
    return [error for step in steps[index + 1 :] for error in step.errors]


def _failed(index: int, error: ProblemError, later: list[dict[str, Any]]) -> ProblemError:
    failure = _FAILURES.get(error.status)
    if failure is None:
        return error
    entry = {
        "index": index,
        "status": error.status,
        "detail": error.detail,
        # The members of every problem's errors (docs/spec/README.md §2.3) as well.
        "loc": ["body", "operations", str(index)],
        "msg": error.detail,
        "type": _ERROR_TYPES[error.status],
    }
    return failure(
        f"operation {index} failed: {error.detail}; nothing was changed",
        extra={"errors": [entry, *later]},
    )


async def _apply(repo: TaskRepository, actor: Actor, step: _Step, now: datetime) -> dict[str, Any]:
    if step.op == "create":
        assert isinstance(step.body, TaskCreate)
        task = await service.add_task(repo, actor=actor, body=step.body, now=now)
        return {"index": step.index, "status": 201, "task": _public(task)}
    if step.task_id is None:
        raise NotFound("no such task")
    if step.op == "update":
        assert isinstance(step.body, TaskUpdate)
        task = await service.update_task(
            repo,
            actor=actor,
            task_id=step.task_id,
            patch=step.body,
            if_match=step.if_match,
            now=now,
        )
    elif step.op == "complete":
        task = await service.complete_task(
            repo, actor=actor, task_id=step.task_id, if_match=step.if_match, now=now
        )
    elif step.op == "reopen":
        task = await service.reopen_task(
            repo, actor=actor, task_id=step.task_id, if_match=step.if_match, now=now
        )
    else:
        await service.delete_task(
            repo, actor=actor, task_id=step.task_id, if_match=step.if_match, now=now
        )
        return {"index": step.index, "status": 204}
    return {"index": step.index, "status": 200, "task": _public(task)}


def _public(task: Any) -> dict[str, Any]:
    # Taken now: a later operation of the same batch may change the same task again.
    return service.to_public(task).model_dump(mode="json")


async def run_batch(
    repo: TaskRepository,
    *,
    actor: Actor,
    request: BatchRequest,
    idempotency_key: str | None,
    idempotency_ttl: timedelta,
    now: datetime,
) -> Created:
    """Apply every operation in order; raise the first failure (the caller rolls back)."""
    steps = [_prepare(index, operation) for index, operation in enumerate(request.operations)]
    await repo.begin_write(owner_id=actor.owner_id)
    replay = await service.replay_or_claim(
        repo,
        actor=actor,
        key=idempotency_key,
        request_hash=_request_hash(steps, request),
        ttl=idempotency_ttl,
        now=now,
    )
    if replay is not None:
        return replay
    results: list[dict[str, Any]] = []
    for step in steps:
        if step.errors:
            detail = step.errors[0]["detail"]
            raise UnprocessableEntity(
                f"operation {step.index} failed: {detail}; nothing was changed",
                extra={"errors": [*step.errors, *_later_errors(steps, step.index)]},
            )
        try:
            results.append(await _apply(repo, actor, step, now))
        except ProblemError as error:
            raise _failed(step.index, error, _later_errors(steps, step.index)) from None
    return await service.remember_response(
        repo, actor=actor, key=idempotency_key, created=Created(200, {"results": results})
    )
