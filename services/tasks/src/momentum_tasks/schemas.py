"""API models of the tasks service (docs/spec/tasks.md)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StringConstraints,
    field_validator,
)
from pydantic.json_schema import SkipJsonSchema

from momentum_shared.events import format_utc
from momentum_shared.validation import StorableTextSchema, storable_text
from momentum_tasks import recurrence
from momentum_tasks.models import NO_DUE_DATE

_RFC3339_START = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ]")


def _rfc3339_text(value: object) -> object:
    # Pydantic would read a bare number (or a numeric string) as Unix time; the spec
    # (docs/spec/README.md §2.2) speaks RFC 3339 only: a number is a client mistake, not a date.
    if isinstance(value, str) and _RFC3339_START.match(value):
        return value
    if isinstance(value, datetime):
        return value  # already parsed (a model built in Python)
    raise ValueError("must be an RFC 3339 timestamp such as 2026-12-01T09:30:00Z")


def _storable_instant(value: datetime) -> datetime:
    try:
        in_utc = value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range") from None
    if in_utc >= NO_DUE_DATE:
        raise ValueError("must be before 9999-12-31T00:00:00Z")
    return in_utc


UtcDateTime = Annotated[datetime, PlainSerializer(format_utc, return_type=str)]
Instant = Annotated[
    AwareDatetime, BeforeValidator(_rfc3339_text), AfterValidator(_storable_instant)
]
Text = Annotated[str, AfterValidator(storable_text), StorableTextSchema()]
Title = Annotated[Text, StringConstraints(min_length=1, max_length=200)]
Description = Annotated[Text, StringConstraints(max_length=10_000)]
Tag = Annotated[Text, StringConstraints(min_length=1, max_length=32)]
Tags = Annotated[list[Tag], Field(max_length=20)]
Priority = Literal["low", "normal", "high"]
Status = Literal["open", "done"]


def _recurrence(value: str) -> str:
    try:
        return recurrence.parse(value).text
    except recurrence.RuleError as exc:
        raise ValueError(str(exc)) from None


Recurrence = Annotated[
    str,
    StringConstraints(min_length=1, max_length=recurrence.MAX_LENGTH),
    AfterValidator(_recurrence),
    Field(
        description=(
            "an RFC 5545 RRULE value: FREQ (DAILY, WEEKLY, MONTHLY, YEARLY), INTERVAL, BYDAY,"
            " BYMONTHDAY, COUNT or UNTIL; stored upper-cased; needs due_at"
        ),
        examples=["FREQ=WEEKLY;BYDAY=MO,WE,FR"],
    ),
]


def _unique_tags(tags: list[str]) -> list[str]:
    # Tags are a set to the user; keep the first spelling's position.
    return list(dict.fromkeys(tags))


class TaskCreate(BaseModel):
    """Body of ``POST /tasks``."""

    model_config = ConfigDict(extra="forbid")

    title: Title
    description: Description | None = None
    priority: Priority = "normal"
    due_at: Instant | None = None
    tags: Tags = Field(default_factory=list)
    project_id: uuid.UUID | None = None
    recurrence: Recurrence | None = None

    _dedupe_tags = field_validator("tags")(_unique_tags)


class TaskUpdate(BaseModel):
    """Body of ``PATCH /tasks/{id}``: only the fields present change; status has its own routes."""

    model_config = ConfigDict(extra="forbid")

    # Omitted or a value; null is refused (the schema says so: SkipJsonSchema hides None).
    title: Title | SkipJsonSchema[None] = None
    description: Description | None = None
    priority: Priority | SkipJsonSchema[None] = None
    due_at: Instant | None = None
    tags: Tags | SkipJsonSchema[None] = None
    project_id: uuid.UUID | None = None
    recurrence: Recurrence | None = None

    @field_validator("title", "priority", "tags")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may be omitted but not null")
        return value

    @field_validator("tags")
    @classmethod
    def _dedupe(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _unique_tags(value)


class TaskPublic(BaseModel):
    """A task as clients see it."""

    id: uuid.UUID
    title: str
    description: str | None
    status: Status
    priority: Priority
    due_at: UtcDateTime | None
    tags: list[str]
    created_at: UtcDateTime
    updated_at: UtcDateTime
    completed_at: UtcDateTime | None
    project_id: uuid.UUID | None
    recurrence: str | None
    last_completed_at: Annotated[
        UtcDateTime | None,
        Field(description="the latest completion of this recurring task; null before one"),
    ]
    version: int


class TaskPage(BaseModel):
    """One page of ``GET /tasks``; ``next_cursor`` is null on the last page."""

    items: list[TaskPublic]
    next_cursor: str | None


class TaskSort(StrEnum):
    newest_first = "-created_at"
    oldest_first = "created_at"
    due_soonest = "due_at"
    due_latest = "-due_at"
    relevance = "relevance"  # best match first; only with a search


class TaskFilters(BaseModel):
    """The list filters; a cursor is only valid with the filters and sort it was issued for."""

    model_config = ConfigDict(frozen=True)

    status: Status | None = None
    priority: Priority | None = None
    tag: Tag | None = None
    q: Annotated[Text, StringConstraints(min_length=1, max_length=200)] | None = None
    due_before: Instant | None = None
    due_after: Instant | None = None
    project_id: uuid.UUID | Literal["none"] | None = None
    search: Annotated[Text, StringConstraints(min_length=1, max_length=200)] | None = None


BatchOp = Literal["create", "update", "complete", "reopen", "delete"]


class BatchOperation(BaseModel):
    """One operation of ``POST /tasks/batch``; ``data`` is validated when its turn comes."""

    model_config = ConfigDict(extra="forbid")

    op: BatchOp
    id: Annotated[
        str | None,
        Field(
            description="the task (update, complete, reopen, delete); absent for create",
            json_schema_extra={"format": "uuid"},
        ),
    ] = None
    data: Annotated[
        dict[str, Any] | None,
        Field(
            description=(
                "the body of POST /tasks (create) or of PATCH /tasks/{id} (update);"
                " absent for the other operations"
            )
        ),
    ] = None
    if_match: Annotated[
        str | None,
        Field(description='as the If-Match header, for example "\\"3\\"" (not for create)'),
    ] = None


class BatchRequest(BaseModel):
    """Body of ``POST /tasks/batch``: 1 to 100 operations, applied in order, all or nothing."""

    model_config = ConfigDict(extra="forbid")

    operations: Annotated[list[BatchOperation], Field(min_length=1, max_length=100)]


class BatchResult(BaseModel):
    """What one operation did: its status as the single-task route answers it, and the task."""

    index: int
    status: int
    task: Annotated[TaskPublic | None, Field(description="absent for delete")] = None


class BatchResponse(BaseModel):
    """The answer of a batch that was applied whole."""

    results: list[BatchResult]


ProjectName = Annotated[Text, StringConstraints(min_length=1, max_length=120)]
Color = Annotated[
    str,
    StringConstraints(pattern=r"^#[0-9A-Fa-f]{6}$"),
    AfterValidator(str.lower),
    Field(description="#rrggbb, returned in lower case", examples=["#1e90ff"]),
]


class ProjectCreate(BaseModel):
    """Body of ``POST /projects``."""

    model_config = ConfigDict(extra="forbid")

    name: ProjectName
    color: Color | None = None
    archived: StrictBool = False


class ProjectUpdate(BaseModel):
    """Body of ``PATCH /projects/{id}``: only the fields present change."""

    model_config = ConfigDict(extra="forbid")

    name: ProjectName | SkipJsonSchema[None] = None
    color: Color | None = None
    archived: StrictBool | SkipJsonSchema[None] = None

    @field_validator("name", "archived")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may be omitted but not null")
        return value


class ProjectPublic(BaseModel):
    """A project as clients see it."""

    id: uuid.UUID
    name: str
    color: str | None
    archived: bool
    created_at: UtcDateTime
    updated_at: UtcDateTime
    version: int


class ProjectPage(BaseModel):
    """One page of ``GET /projects``, by name; ``next_cursor`` is null on the last page."""

    items: list[ProjectPublic]
    next_cursor: str | None


class ArchivedFilter(StrEnum):
    active = "false"
    archived = "true"
    any = "any"


class TaskChange(BaseModel):
    """A task created or changed since the token: its latest state."""

    task: TaskPublic


class DeletedTask(BaseModel):
    id: uuid.UUID
    deleted_at: UtcDateTime


class TaskDeletion(BaseModel):
    """A task deleted since the token."""

    deleted: DeletedTask


class ChangesPage(BaseModel):
    """One page of ``GET /tasks/changes``; pass ``next_since`` back as ``since``."""

    changes: list[TaskChange | TaskDeletion]
    next_since: str
    has_more: bool
