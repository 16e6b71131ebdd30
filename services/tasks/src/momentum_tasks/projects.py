"""Rules of projects (docs/spec/tasks.md §6): unique names per user, versions, delete with tasks."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, timedelta

from momentum_shared.errors import Conflict, NotFound, PreconditionFailed
from momentum_tasks import publishing, service
from momentum_tasks.models import Project
from momentum_tasks.pagination import CursorCodec
from momentum_tasks.repository import ProjectRow, TaskRepository
from momentum_tasks.schemas import (
    ArchivedFilter,
    ProjectCreate,
    ProjectPage,
    ProjectPublic,
    ProjectUpdate,
)
from momentum_tasks.service import Actor, Created

EDITABLE_FIELDS = ("name", "color", "archived")


def to_public(project: Project | ProjectRow) -> ProjectPublic:
    return ProjectPublic.model_validate(project, from_attributes=True)


def _name_taken(name: str) -> Conflict:
    return Conflict(f"you already have a project named {name!r} (names ignore case)")


def _check_precondition(project: Project, if_match: str | None) -> None:
    accepted = service.parse_if_match(if_match)
    if accepted is not None and str(project.version) not in accepted:
        raise PreconditionFailed(
            f"the project is at version {project.version}; fetch it again and retry",
            headers={"ETag": service.etag(project.version)},
        )


def _request_hash(body: ProjectCreate) -> str:
    # The route is part of the hash: a key used on POST /tasks is another body here.
    canonical = json.dumps(
        ["POST /projects", body.model_dump(mode="json")], sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


async def _locked_project(repo: TaskRepository, actor: Actor, project_id: uuid.UUID) -> Project:
    await repo.begin_write(owner_id=actor.owner_id)
    project = await repo.get_project(owner_id=actor.owner_id, project_id=project_id, lock="update")
    if project is None:
        raise NotFound("no such project")
    return project


async def create_project(
    repo: TaskRepository,
    *,
    actor: Actor,
    body: ProjectCreate,
    idempotency_key: str | None,
    idempotency_ttl: timedelta,
    now: datetime,
) -> Created:
    await repo.begin_write(owner_id=actor.owner_id)
    replay = await service.replay_or_claim(
        repo,
        actor=actor,
        key=idempotency_key,
        request_hash=_request_hash(body),
        ttl=idempotency_ttl,
        now=now,
    )
    if replay is not None:
        return replay
    project = Project(
        id=uuid.uuid4(),
        owner_id=actor.owner_id,
        name=body.name,
        name_folded=body.name.casefold(),
        color=body.color,
        archived=body.archived,
        created_at=now,
        updated_at=now,
        version=1,
    )
    if not await repo.add_project(project):
        raise _name_taken(body.name)
    publishing.project_created(repo.session, project, usertz=actor.usertz)
    return await service.remember_response(
        repo,
        actor=actor,
        key=idempotency_key,
        created=Created(201, to_public(project).model_dump(mode="json")),
    )


async def get_project(repo: TaskRepository, *, actor: Actor, project_id: uuid.UUID) -> ProjectRow:
    project = await repo.read_project(owner_id=actor.owner_id, project_id=project_id)
    if project is None:
        raise NotFound("no such project")
    return project


async def list_projects(
    repo: TaskRepository,
    *,
    actor: Actor,
    archived: ArchivedFilter,
    limit: int,
    cursor: str | None,
    codec: CursorCodec,
) -> ProjectPage:
    listing = f"projects:{archived.value}"
    after = None
    if cursor is not None:
        after = codec.decode_name(cursor, owner_id=actor.owner_id, listing=listing)
    rows = await repo.list_projects(
        owner_id=actor.owner_id, archived=archived, after=after, limit=limit
    )
    items = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        next_cursor = codec.encode_name(
            owner_id=actor.owner_id, listing=listing, name=items[-1].name_folded
        )
    return ProjectPage(items=[to_public(row) for row in items], next_cursor=next_cursor)


async def update_project(
    repo: TaskRepository,
    *,
    actor: Actor,
    project_id: uuid.UUID,
    patch: ProjectUpdate,
    if_match: str | None,
    now: datetime,
) -> Project:
    project = await _locked_project(repo, actor, project_id)
    _check_precondition(project, if_match)
    changed = False
    for name in EDITABLE_FIELDS:
        if name in patch.model_fields_set and getattr(patch, name) != getattr(project, name):
            setattr(project, name, getattr(patch, name))
            changed = True
    if not changed:
        return project  # nothing changed: same version, no event
    name = project.name  # read now: after a refused flush the row cannot be loaded again
    project.name_folded = name.casefold()
    project.version += 1
    project.updated_at = now
    if not await repo.save_project():
        raise _name_taken(name)
    publishing.project_updated(repo.session, project, usertz=actor.usertz)
    return project


async def delete_project(
    repo: TaskRepository,
    *,
    actor: Actor,
    project_id: uuid.UUID,
    if_match: str | None,
    now: datetime,
) -> int:
    """Delete the project and its tasks, each task with its own event; how many tasks went."""
    project = await _locked_project(repo, actor, project_id)
    _check_precondition(project, if_match)
    tasks = await repo.project_tasks(owner_id=actor.owner_id, project_id=project.id)
    for task in tasks:
        await service.remove_task(repo, actor=actor, task=task, now=now)
    await repo.delete_project(owner_id=actor.owner_id, project_id=project.id)
    publishing.project_deleted(repo.session, project, usertz=actor.usertz, at=now)
    return len(tasks)
