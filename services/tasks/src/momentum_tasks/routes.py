"""HTTP routes of the tasks service (docs/spec/tasks.md)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, ClassVar

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from momentum_shared.bodies import BearerFirstRoute
from momentum_shared.errors import (
    PROBLEM_JSON,
    ProblemError,
    UnprocessableEntity,
    problem_body,
    validation_errors,
)
from momentum_shared.openapi import examples
from momentum_shared.state import NowDep
from momentum_shared.validation import StorableTextSchema
from momentum_tasks import batches, changes, projects, service
from momentum_tasks.dependencies import (
    CursorCodecDep,
    IdempotencyKeyDep,
    IfMatchDep,
    ProjectIdDep,
    ReaderDep,
    ReadRepositoryDep,
    RepositoryDep,
    SettingsDep,
    TaskIdDep,
    WriterDep,
)
from momentum_tasks.models import Project, Task
from momentum_tasks.repository import ProjectRow, TaskRow
from momentum_tasks.schemas import (
    ArchivedFilter,
    BatchRequest,
    BatchResponse,
    ChangesPage,
    Priority,
    ProjectCreate,
    ProjectPage,
    ProjectPublic,
    ProjectUpdate,
    Status,
    TaskCreate,
    TaskFilters,
    TaskPage,
    TaskPublic,
    TaskSort,
    TaskUpdate,
)

PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing, invalid or expired bearer token", **PROBLEM},
    403: {"description": "the token lacks the route's scope", **PROBLEM},
    503: {"description": "the database cannot be reached", **PROBLEM},
}
tasks_router = APIRouter(
    prefix="/tasks", route_class=BearerFirstRoute, tags=["tasks"], responses=COMMON_RESPONSES
)
projects_router = APIRouter(
    prefix="/projects",
    route_class=BearerFirstRoute,
    tags=["projects"],
    responses=COMMON_RESPONSES,
)
TASK_EXAMPLE: dict[str, Any] = {
    "id": "0f8fad5b-d9cb-469f-a165-70867728950e",
    "title": "Write the report",
    "description": "The numbers for November",
    "status": "open",
    "priority": "high",
    "due_at": "2026-12-04T17:00:00Z",
    "tags": ["work"],
    "created_at": "2026-12-02T09:30:00Z",
    "updated_at": "2026-12-02T09:30:00Z",
    "completed_at": None,
    "project_id": None,
    "recurrence": None,
    "last_completed_at": None,
    "version": 1,
}
# 09:00 Berlin time every Monday, Wednesday and Friday (docs/spec/tasks.md §2.3).
RECURRING_EXAMPLE: dict[str, Any] = {
    **TASK_EXAMPLE,
    "id": "9b2f4c1e-3a5d-4e8f-b6c7-d8e9f0a1b2c3",
    "title": "Water the plants",
    "description": None,
    "priority": "normal",
    "due_at": "2026-12-04T08:00:00Z",
    "tags": ["home"],
    "recurrence": "FREQ=WEEKLY;BYDAY=MO,WE,FR",
}
RECURRING_DONE_EXAMPLE = {
    **RECURRING_EXAMPLE,
    "due_at": "2026-12-07T08:00:00Z",
    "updated_at": "2026-12-04T08:05:00Z",
    "last_completed_at": "2026-12-04T08:05:00Z",
    "version": 2,
}


def _invalid_example(detail: str, loc: list[str], msg: str) -> dict[str, Any]:
    return problem_body(
        422,
        title="Unprocessable Entity",
        detail=detail,
        extra={"errors": [{"loc": loc, "msg": msg, "type": "value_error"}]},
    )


BAD_RECURRENCE = _invalid_example(
    "the request did not validate",
    ["body", "recurrence"],
    "Value error, BYHOUR is not supported; a recurrence takes FREQ, INTERVAL, BYDAY,"
    " BYMONTHDAY, COUNT, UNTIL only",
)
NO_DUE_DATE = _invalid_example(
    "a recurring task needs a due_at", ["body", "due_at"], "a recurring task needs a due_at"
)


def _unprocessable(description: str, example: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_JSON: {"example": example}}}


DONE_EXAMPLE = {
    **TASK_EXAMPLE,
    "status": "done",
    "updated_at": "2026-12-03T16:10:00Z",
    "completed_at": "2026-12-03T16:10:00Z",
    "version": 2,
}
ONE_TASK: dict[int | str, dict[str, Any]] = {
    404: {"description": "absent, deleted or someone else's", **PROBLEM},
    412: {"description": "If-Match is not the current ETag", **PROBLEM},
}


def _task_response(task: Task | TaskRow, response: Response) -> TaskPublic:
    response.headers["ETag"] = service.etag(task.version)
    return service.to_public(task)


@tasks_router.post(
    "",
    operation_id="tasks.create",
    status_code=201,
    openapi_extra=examples(
        request={
            "title": "Water the plants",
            "due_at": "2026-12-04T08:00:00Z",
            "tags": ["home"],
            "recurrence": "FREQ=WEEKLY;BYDAY=MO,WE,FR",
        },
        response=RECURRING_EXAMPLE,
        status=201,
    ),
    response_model=TaskPublic,
    responses={
        400: {
            "description": "a malformed Idempotency-Key, or a body that cannot be parsed",
            **PROBLEM,
        },
        409: {
            "description": "the first request with this Idempotency-Key is in progress",
            **PROBLEM,
        },
        413: {"description": "body too large", **PROBLEM},
        422: _unprocessable(
            "the body did not validate (a recurrence outside the subset, a recurring task"
            " without due_at), or the key was used with another body",
            BAD_RECURRENCE,
        ),
    },
)
async def create_task(
    body: TaskCreate,
    actor: WriterDep,
    repo: RepositoryDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKeyDep,
    now: NowDep,
) -> JSONResponse:
    """Create a task; a repeated Idempotency-Key with the same body replays the first response."""
    created = await service.create_task(
        repo,
        actor=actor,
        body=body,
        idempotency_key=idempotency_key,
        idempotency_ttl=timedelta(seconds=settings.idempotency_ttl_seconds),
        now=now,
    )
    # A replay is the same response as the first, headers included (docs/spec/tasks.md §4).
    headers = {
        "Location": f"/tasks/{created.body['id']}",
        "ETag": service.etag(int(created.body["version"])),
    }
    return JSONResponse(created.body, status_code=created.status_code, headers=headers)


@tasks_router.post(
    "/batch",
    operation_id="tasks.batch",
    openapi_extra=examples(
        request={
            "operations": [
                {"op": "create", "data": {"title": "Book the flights", "tags": ["travel"]}},
                {
                    "op": "update",
                    "id": TASK_EXAMPLE["id"],
                    "data": {"priority": "normal"},
                    "if_match": '"1"',
                },
                {"op": "complete", "id": TASK_EXAMPLE["id"]},
            ]
        },
        response={
            "results": [
                {
                    "index": 0,
                    "status": 201,
                    "task": {
                        **TASK_EXAMPLE,
                        "id": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
                        "title": "Book the flights",
                        "description": None,
                        "priority": "normal",
                        "due_at": None,
                        "tags": ["travel"],
                        "created_at": "2026-12-03T16:10:00Z",
                        "updated_at": "2026-12-03T16:10:00Z",
                    },
                },
                {
                    "index": 1,
                    "status": 200,
                    "task": {
                        **TASK_EXAMPLE,
                        "priority": "normal",
                        "updated_at": "2026-12-03T16:10:00Z",
                        "version": 2,
                    },
                },
                {
                    "index": 2,
                    "status": 200,
                    "task": {**DONE_EXAMPLE, "priority": "normal", "version": 3},
                },
            ]
        },
    ),
    response_model=BatchResponse,
    response_model_exclude_none=True,
    responses={
        400: {
            "description": "a malformed Idempotency-Key, or a body that cannot be parsed",
            **PROBLEM,
        },
        404: {
            "description": (
                "an operation names a task that is absent or someone else's;"
                " errors: [{index, status, detail}]"
            ),
            **PROBLEM,
        },
        409: {
            "description": "the first request with this Idempotency-Key is in progress",
            **PROBLEM,
        },
        412: {"description": "an operation's if_match is not the task's ETag", **PROBLEM},
        413: {"description": "body too large", **PROBLEM},
        422: {
            "description": (
                "the body or an operation did not validate, or the key was used with another"
                " body; errors: [{index, status, detail}] for an operation"
            ),
            "content": {
                PROBLEM_JSON: {
                    "example": _invalid_example(
                        "operation 0 failed: Value error, BYHOUR is not supported; a recurrence"
                        " takes FREQ, INTERVAL, BYDAY, BYMONTHDAY, COUNT, UNTIL only; nothing"
                        " was changed",
                        ["body", "operations", "0", "data", "recurrence"],
                        "Value error, BYHOUR is not supported; a recurrence takes FREQ,"
                        " INTERVAL, BYDAY, BYMONTHDAY, COUNT, UNTIL only",
                    )
                }
            },
        },
    },
)
async def run_batch(
    body: BatchRequest,
    actor: WriterDep,
    repo: RepositoryDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKeyDep,
    now: NowDep,
) -> JSONResponse:
    """Apply up to 100 task operations in order, all or nothing; the first failure answers."""
    done = await batches.run_batch(
        repo,
        actor=actor,
        request=body,
        idempotency_key=idempotency_key,
        idempotency_ttl=timedelta(seconds=settings.idempotency_ttl_seconds),
        now=now,
    )
    return JSONResponse(done.body, status_code=done.status_code)


@tasks_router.get(
    "/changes",
    operation_id="tasks.changes",
    response_model=ChangesPage,
    openapi_extra=examples(
        response={
            "changes": [
                {"task": {**TASK_EXAMPLE, "updated_at": "2026-12-03T16:10:00Z", "version": 2}},
                {
                    "deleted": {
                        "id": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
                        "deleted_at": "2026-12-03T16:12:00Z",
                    }
                },
            ],
            "next_since": "eyJ2IjoxLCJvIjoiLi4uIn0.c2lnbmF0dXJl",
            "has_more": False,
        }
    ),
    responses={
        410: {
            "description": (
                "since is malformed or older than the tombstones are kept"
                " (type urn:momentum:problem/resync-required): start again without since"
            ),
            **PROBLEM,
        }
    },
)
async def list_changes(
    actor: ReaderDep,
    repo: ReadRepositoryDep,
    codec: CursorCodecDep,
    settings: SettingsDep,
    now: NowDep,
    since: Annotated[
        str | None,
        Query(description="next_since of the previous page; absent: every current task"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> ChangesPage:
    """The caller's task changes after since, oldest first, for keeping an offline copy."""
    return await changes.changes(
        repo,
        actor=actor,
        since=since,
        limit=limit,
        codec=codec,
        retention=timedelta(seconds=settings.tombstone_retention_seconds),
        now=now,
    )


class MethodNotAllowed(ProblemError):
    status: ClassVar[int] = 405
    title: ClassVar[str] = "Method Not Allowed"


def _only(*methods: str) -> Any:
    """A route answering 405 at a fixed path below /tasks for the methods it does not serve.

    Without it, ``PATCH /tasks/batch`` would reach ``PATCH /tasks/{task_id}`` and be a 404
    for a task named "batch".
    """
    allowed = ", ".join(methods)

    async def refuse() -> None:
        raise MethodNotAllowed(f"this path answers {allowed} only", headers={"Allow": allowed})

    return refuse


for _path, _methods in (("/batch", ("POST",)), ("/changes", ("GET", "HEAD"))):
    tasks_router.add_api_route(
        _path,
        _only(*_methods),
        methods=sorted(
            {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"} - set(_methods)
        ),
        include_in_schema=False,
    )


@tasks_router.get(
    "",
    operation_id="tasks.list",
    response_model=TaskPage,
    openapi_extra=examples(response={"items": [TASK_EXAMPLE], "next_cursor": None}),
    responses={
        400: {"description": "bad cursor", **PROBLEM},
        422: {
            "description": (
                "a parameter did not validate, a search with no words to look for,"
                " or sort=relevance without search"
            ),
            **PROBLEM,
        },
    },
)
async def list_tasks(
    actor: ReaderDep,
    repo: ReadRepositoryDep,
    codec: CursorCodecDep,
    status: Annotated[Status | None, Query(description="open or done")] = None,
    priority: Annotated[Priority | None, Query(description="low, normal or high")] = None,
    tag: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=32,
            description="has this tag (exact)",
            json_schema_extra={"pattern": StorableTextSchema.pattern},
        ),
    ] = None,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description="substring of the title, any case",
            json_schema_extra={"pattern": StorableTextSchema.pattern},
        ),
    ] = None,
    due_before: Annotated[
        str | None,
        Query(
            description="due strictly before this RFC 3339 instant",
            json_schema_extra={"format": "date-time"},
        ),
    ] = None,
    due_after: Annotated[
        str | None,
        Query(
            description="due strictly after this RFC 3339 instant",
            json_schema_extra={"format": "date-time"},
        ),
    ] = None,
    search: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description=(
                "full-text search in title and description: every word must match (English"
                " stemming: running finds run), the last word also as a prefix (plan finds"
                " planning); only letters and digits count, common words such as 'the' are"
                " ignored, and a search left with no word is 422"
            ),
            json_schema_extra={"pattern": StorableTextSchema.pattern},
            openapi_examples={
                "words": {"summary": "tasks about the quarterly report", "value": "quarter rep"}
            },
        ),
    ] = None,
    sort: Annotated[
        TaskSort,
        Query(
            description=(
                "ties broken by id; tasks without a due date sort after every date,"
                " so they come last for due_at and first for -due_at; relevance (best match"
                " first) only with search, 422 otherwise"
            ),
            openapi_examples={
                "newest": {"summary": "newest first (the default)", "value": "-created_at"},
                "relevance": {"summary": "best match first, with search", "value": "relevance"},
            },
        ),
    ] = TaskSort.newest_first,
    project_id: Annotated[
        str | None,
        Query(
            description="in this project (its id), or none for tasks without a project",
            json_schema_extra={"anyOf": [{"type": "string", "format": "uuid"}, {"const": "none"}]},
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    # No max_length here: an over-long cursor is a bad cursor (400), which decode() says.
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> TaskPage:
    """List the caller's tasks, filtered and sorted, one keyset page at a time."""
    try:
        filters = TaskFilters.model_validate(
            {
                "status": status,
                "priority": priority,
                "tag": tag,
                "q": q,
                "due_before": due_before,
                "due_after": due_after,
                "project_id": project_id,
                "search": search,
            }
        )
    except ValidationError as exc:
        raise UnprocessableEntity(
            "the query parameters did not validate",
            extra={"errors": validation_errors(exc.errors())},
        ) from None
    return await service.list_tasks(
        repo, actor=actor, filters=filters, sort=sort, limit=limit, cursor=cursor, codec=codec
    )


@tasks_router.get(
    "/{task_id}",
    operation_id="tasks.get",
    response_model=TaskPublic,
    responses={404: ONE_TASK[404]},
    openapi_extra=examples(response=TASK_EXAMPLE),
)
async def get_task(
    actor: ReaderDep, task_id: TaskIdDep, repo: ReadRepositoryDep, response: Response
) -> TaskPublic:
    """One of the caller's tasks; 404 if it is absent, deleted or someone else's."""
    task = await service.get_task(repo, actor=actor, task_id=task_id)
    return _task_response(task, response)


@tasks_router.patch(
    "/{task_id}",
    operation_id="tasks.update",
    response_model=TaskPublic,
    openapi_extra=examples(
        request={"priority": "normal", "due_at": None},
        response={
            **TASK_EXAMPLE,
            "priority": "normal",
            "due_at": None,
            "updated_at": "2026-12-02T11:00:00Z",
            "version": 2,
        },
    ),
    responses={
        **ONE_TASK,
        422: _unprocessable(
            "the body did not validate, or it leaves a recurring task without due_at",
            NO_DUE_DATE,
        ),
    },
)
async def update_task(
    actor: WriterDep,
    task_id: TaskIdDep,
    patch: TaskUpdate,
    repo: RepositoryDep,
    response: Response,
    now: NowDep,
    if_match: IfMatchDep = None,
) -> TaskPublic:
    """Change title, description, priority, due date or tags; 412 when If-Match is stale."""
    task = await service.update_task(
        repo, actor=actor, task_id=task_id, patch=patch, if_match=if_match, now=now
    )
    return _task_response(task, response)


@tasks_router.post(
    "/{task_id}/complete",
    operation_id="tasks.complete",
    response_model=TaskPublic,
    # A recurring task moves to its next occurrence; a one-off task is DONE_EXAMPLE.
    openapi_extra=examples(response=RECURRING_DONE_EXAMPLE),
    responses=ONE_TASK,
)
async def complete_task(
    actor: WriterDep,
    task_id: TaskIdDep,
    repo: RepositoryDep,
    response: Response,
    now: NowDep,
    if_match: IfMatchDep = None,
) -> TaskPublic:
    """Mark the task done, or a recurring task's occurrence (it moves to the next one)."""
    task = await service.complete_task(
        repo, actor=actor, task_id=task_id, if_match=if_match, now=now
    )
    return _task_response(task, response)


@tasks_router.post(
    "/{task_id}/reopen",
    operation_id="tasks.reopen",
    response_model=TaskPublic,
    openapi_extra=examples(
        response={**TASK_EXAMPLE, "updated_at": "2026-12-03T16:20:00Z", "version": 3}
    ),
    responses=ONE_TASK,
)
async def reopen_task(
    actor: WriterDep,
    task_id: TaskIdDep,
    repo: RepositoryDep,
    response: Response,
    now: NowDep,
    if_match: IfMatchDep = None,
) -> TaskPublic:
    """Mark the task open again and clear its completion time."""
    task = await service.reopen_task(repo, actor=actor, task_id=task_id, if_match=if_match, now=now)
    return _task_response(task, response)


@tasks_router.delete(
    "/{task_id}",
    operation_id="tasks.delete",
    status_code=204,
    response_class=Response,
    responses=ONE_TASK,
)
async def delete_task(
    actor: WriterDep,
    task_id: TaskIdDep,
    repo: RepositoryDep,
    now: NowDep,
    if_match: IfMatchDep = None,
) -> Response:
    """Delete the task; afterwards it is 404 everywhere."""
    await service.delete_task(repo, actor=actor, task_id=task_id, if_match=if_match, now=now)
    return Response(status_code=204)


# --- projects ------------------------------------------------------------------------------

PROJECT_EXAMPLE: dict[str, Any] = {
    "id": "3b241101-e2bb-4255-8caf-4136c566a962",
    "name": "Home",
    "color": "#1e90ff",
    "archived": False,
    "created_at": "2026-12-02T09:00:00Z",
    "updated_at": "2026-12-02T09:00:00Z",
    "version": 1,
}
ONE_PROJECT: dict[int | str, dict[str, Any]] = {
    404: {"description": "absent or someone else's", **PROBLEM},
    412: {"description": "If-Match is not the current ETag", **PROBLEM},
}


def _project_response(project: Project | ProjectRow, response: Response) -> ProjectPublic:
    response.headers["ETag"] = service.etag(project.version)
    return projects.to_public(project)


@projects_router.post(
    "",
    operation_id="tasks.create_project",
    status_code=201,
    openapi_extra=examples(
        request={"name": "Home", "color": "#1E90FF"}, response=PROJECT_EXAMPLE, status=201
    ),
    response_model=ProjectPublic,
    responses={
        400: {
            "description": "a malformed Idempotency-Key, or a body that cannot be parsed",
            **PROBLEM,
        },
        409: {
            "description": (
                "a project of this name (ignoring case) exists, or the first request with this"
                " Idempotency-Key is in progress"
            ),
            **PROBLEM,
        },
        413: {"description": "body too large", **PROBLEM},
        422: {
            "description": "the body did not validate, or the key was used with another body",
            **PROBLEM,
        },
    },
)
async def create_project(
    body: ProjectCreate,
    actor: WriterDep,
    repo: RepositoryDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKeyDep,
    now: NowDep,
) -> JSONResponse:
    """Create a project; its name must differ, ignoring case, from the caller's others."""
    created = await projects.create_project(
        repo,
        actor=actor,
        body=body,
        idempotency_key=idempotency_key,
        idempotency_ttl=timedelta(seconds=settings.idempotency_ttl_seconds),
        now=now,
    )
    headers = {
        "Location": f"/projects/{created.body['id']}",
        "ETag": service.etag(int(created.body["version"])),
    }
    return JSONResponse(created.body, status_code=created.status_code, headers=headers)


@projects_router.get(
    "",
    operation_id="tasks.list_projects",
    response_model=ProjectPage,
    openapi_extra=examples(response={"items": [PROJECT_EXAMPLE], "next_cursor": None}),
    responses={400: {"description": "bad cursor", **PROBLEM}},
)
async def list_projects(
    actor: ReaderDep,
    repo: ReadRepositoryDep,
    codec: CursorCodecDep,
    archived: Annotated[
        ArchivedFilter, Query(description="true, false (the default) or any")
    ] = ArchivedFilter.active,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> ProjectPage:
    """List the caller's projects by name, ignoring case, one keyset page at a time."""
    return await projects.list_projects(
        repo, actor=actor, archived=archived, limit=limit, cursor=cursor, codec=codec
    )


@projects_router.get(
    "/{project_id}",
    operation_id="tasks.get_project",
    response_model=ProjectPublic,
    responses={404: ONE_PROJECT[404]},
    openapi_extra=examples(response=PROJECT_EXAMPLE),
)
async def get_project(
    actor: ReaderDep, project_id: ProjectIdDep, repo: ReadRepositoryDep, response: Response
) -> ProjectPublic:
    """One of the caller's projects; 404 if it is absent or someone else's."""
    project = await projects.get_project(repo, actor=actor, project_id=project_id)
    return _project_response(project, response)


@projects_router.patch(
    "/{project_id}",
    operation_id="tasks.update_project",
    response_model=ProjectPublic,
    openapi_extra=examples(
        request={"archived": True},
        response={
            **PROJECT_EXAMPLE,
            "archived": True,
            "updated_at": "2026-12-03T10:00:00Z",
            "version": 2,
        },
    ),
    responses={
        **ONE_PROJECT,
        409: {"description": "another project of the caller has this name", **PROBLEM},
    },
)
async def update_project(
    actor: WriterDep,
    project_id: ProjectIdDep,
    patch: ProjectUpdate,
    repo: RepositoryDep,
    response: Response,
    now: NowDep,
    if_match: IfMatchDep = None,
) -> ProjectPublic:
    """Rename, recolour, archive or unarchive a project; 412 when If-Match is stale."""
    project = await projects.update_project(
        repo, actor=actor, project_id=project_id, patch=patch, if_match=if_match, now=now
    )
    return _project_response(project, response)


@projects_router.delete(
    "/{project_id}",
    operation_id="tasks.delete_project",
    status_code=204,
    response_class=Response,
    responses=ONE_PROJECT,
)
async def delete_project(
    actor: WriterDep,
    project_id: ProjectIdDep,
    repo: RepositoryDep,
    now: NowDep,
    if_match: IfMatchDep = None,
) -> Response:
    """Delete the project and every task in it; afterwards all of them are 404."""
    await projects.delete_project(
        repo, actor=actor, project_id=project_id, if_match=if_match, now=now
    )
    return Response(status_code=204)


# What the app serves: the task routes, then the project routes.
router = APIRouter()
router.include_router(tasks_router)
router.include_router(projects_router)
