"""FastAPI dependencies of the tasks service, as ``Annotated`` aliases the routes read."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Header, Path, Request

from momentum_shared.db import ReadSessionDep, SessionDep
from momentum_shared.errors import BadRequest, NotFound
from momentum_shared.security.dependencies import RequireScope
from momentum_shared.security.verification import Claims
from momentum_shared.validation import valid_timezone
from momentum_tasks.pagination import CursorCodec
from momentum_tasks.repository import TaskRepository
from momentum_tasks.service import Actor
from momentum_tasks.settings import TasksSettings
from momentum_tasks.state import tasks_state

ReadClaimsDep = Annotated[Claims, Depends(RequireScope("tasks:read"))]
WriteClaimsDep = Annotated[Claims, Depends(RequireScope("tasks:write"))]


def _actor(claims: Claims) -> Actor:
    # The verifier refuses any token whose subject is not a canonical UUID.
    return Actor(owner_id=claims.user_id, usertz=valid_timezone(claims.tz))


async def reader(claims: ReadClaimsDep) -> Actor:
    return _actor(claims)


async def writer(claims: WriteClaimsDep) -> Actor:
    return _actor(claims)


ReaderDep = Annotated[Actor, Depends(reader)]
WriterDep = Annotated[Actor, Depends(writer)]


async def get_settings(request: Request) -> TasksSettings:
    return tasks_state(request).settings


SettingsDep = Annotated[TasksSettings, Depends(get_settings)]


async def get_repository(session: SessionDep) -> TaskRepository:
    return TaskRepository(session)


RepositoryDep = Annotated[TaskRepository, Depends(get_repository)]


async def get_read_repository(session: ReadSessionDep) -> TaskRepository:
    """The repository of a route that only reads: its statements run without a transaction
    around them (momentum_shared.db.ReadSessionDep); a page is still one statement."""
    return TaskRepository(session)


ReadRepositoryDep = Annotated[TaskRepository, Depends(get_read_repository)]


async def get_cursor_codec(request: Request) -> CursorCodec:
    return tasks_state(request).cursor_codec


CursorCodecDep = Annotated[CursorCodec, Depends(get_cursor_codec)]


async def task_id_from_path(
    task_id: Annotated[str, Path(json_schema_extra={"format": "uuid"})],
) -> uuid.UUID:
    """A path id that is not a UUID names no task: 404, the same as someone else's."""
    try:
        return uuid.UUID(task_id)
    except ValueError:
        raise NotFound("no such task") from None


TaskIdDep = Annotated[uuid.UUID, Depends(task_id_from_path)]


async def project_id_from_path(
    project_id: Annotated[str, Path(json_schema_extra={"format": "uuid"})],
) -> uuid.UUID:
    """A path id that is not a UUID names no project: 404, the same as someone else's."""
    try:
        return uuid.UUID(project_id)
    except ValueError:
        raise NotFound("no such project") from None


ProjectIdDep = Annotated[uuid.UUID, Depends(project_id_from_path)]


# Printable ASCII, not blank only (HTTP strips the blanks around a header value).
IDEMPOTENCY_KEY = r"^[ -~]*[!-~][ -~]*$"


async def idempotency_key(
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="1 to 255 printable ASCII characters (400 otherwise)",
            # Documented only: the check below answers 400, as the spec says, not 422.
            json_schema_extra={"minLength": 1, "maxLength": 255, "pattern": IDEMPOTENCY_KEY},
        ),
    ] = None,
) -> str | None:
    if key is None:
        return None
    if not 1 <= len(key) <= 255 or not key.isprintable() or not key.isascii():
        raise BadRequest("Idempotency-Key must be 1 to 255 printable ASCII characters")
    return key


IdempotencyKeyDep = Annotated[str | None, Depends(idempotency_key)]
IfMatchDep = Annotated[
    str | None,
    Header(
        alias="If-Match",
        # Any text: what is not * or a matching entity tag is 412 (docs/spec/README.md §2.7).
        description='* or entity tags such as "3" (the ETag); 412 unless one matches',
    ),
]
