"""The CloudEvents 1.0 envelope and the typed data of every Momentum event (docs/spec/events.md)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, ValidationError

CLOUDEVENTS_CONTENT_TYPE = "application/cloudevents+json"

AUTH_STREAM = "AUTH_EVENTS"
TASK_STREAM = "TASK_EVENTS"
STREAM_SUBJECTS: dict[str, list[str]] = {AUTH_STREAM: ["auth.>"], TASK_STREAM: ["tasks.>"]}


def utcnow() -> datetime:
    return datetime.now(UTC)


def format_utc(value: datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` suffix."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


UtcDateTime = Annotated[datetime, PlainSerializer(format_utc, return_type=str)]


class EventData(BaseModel):
    """Base of every event's ``data``; fields this code does not know are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    event_type: ClassVar[str]


class UserRegistered(EventData):
    event_type: ClassVar[str] = "auth.user.registered"
    user_id: uuid.UUID
    timezone: str


class UserUpdated(EventData):
    event_type: ClassVar[str] = "auth.user.updated"
    user_id: uuid.UUID
    timezone: str


class UserLoggedIn(EventData):
    event_type: ClassVar[str] = "auth.user.logged_in"
    user_id: uuid.UUID
    method: Literal["password", "refresh"]


class SessionRevoked(EventData):
    event_type: ClassVar[str] = "auth.session.revoked"
    user_id: uuid.UUID
    session_id: uuid.UUID
    expires_at: UtcDateTime


class TaskCreated(EventData):
    event_type: ClassVar[str] = "tasks.task.created"
    task_id: uuid.UUID
    user_id: uuid.UUID
    priority: Literal["low", "normal", "high"]
    due_at: UtcDateTime | None
    created_at: UtcDateTime
    # The task's project (null: none); absent in events written before projects existed.
    project_id: uuid.UUID | None = None


class TaskUpdated(EventData):
    event_type: ClassVar[str] = "tasks.task.updated"
    task_id: uuid.UUID
    user_id: uuid.UUID
    changed: list[str]
    version: int
    # The task's priority after the change (docs/spec/analytics.md rule 11: "as last known");
    # absent in events written before it was carried.
    priority: Literal["low", "normal", "high"] | None = None
    # The task's project (null: none); absent in events written before projects existed.
    project_id: uuid.UUID | None = None


class TaskCompleted(EventData):
    event_type: ClassVar[str] = "tasks.task.completed"
    task_id: uuid.UUID
    user_id: uuid.UUID
    completed_at: UtcDateTime
    due_at: UtcDateTime | None
    # The task's project (null: none); absent in events written before projects existed.
    project_id: uuid.UUID | None = None
    # A completion of a recurring task (due_at is the occurrence completed); absent in events
    # written before recurrence existed, which were all one-off completions.
    recurring: bool = False


class TaskReopened(EventData):
    event_type: ClassVar[str] = "tasks.task.reopened"
    task_id: uuid.UUID
    user_id: uuid.UUID
    # The task's project (null: none); absent in events written before projects existed.
    project_id: uuid.UUID | None = None


class TaskDeleted(EventData):
    event_type: ClassVar[str] = "tasks.task.deleted"
    task_id: uuid.UUID
    user_id: uuid.UUID
    # The task's project (null: none); absent in events written before projects existed.
    project_id: uuid.UUID | None = None


class ProjectCreated(EventData):
    event_type: ClassVar[str] = "tasks.project.created"
    project_id: uuid.UUID
    user_id: uuid.UUID


class ProjectUpdated(EventData):
    event_type: ClassVar[str] = "tasks.project.updated"
    project_id: uuid.UUID
    user_id: uuid.UUID


class ProjectDeleted(EventData):
    event_type: ClassVar[str] = "tasks.project.deleted"
    project_id: uuid.UUID
    user_id: uuid.UUID


EVENT_TYPES: dict[str, type[EventData]] = {
    cls.event_type: cls
    for cls in (
        UserRegistered,
        UserUpdated,
        UserLoggedIn,
        SessionRevoked,
        TaskCreated,
        TaskUpdated,
        TaskCompleted,
        TaskReopened,
        TaskDeleted,
        ProjectCreated,
        ProjectUpdated,
        ProjectDeleted,
    )
}


# Attributes left out of the JSON when they have no value.
_OPTIONAL_ATTRIBUTES = (
    "subject",
    "usertz",
    "traceparent",
    "tracestate",
    "partitionkey",
    "sequence",
)

# The width of ``sequence``: a zero-padded decimal, so that the string order is the number's.
SEQUENCE_DIGITS = 20


def sequence_of(number: int) -> str:
    """``number`` as a ``sequence`` value (lexicographically ordered, CloudEvents Sequence)."""
    if number < 1:
        raise ValueError("a sequence starts at 1")
    return f"{number:0{SEQUENCE_DIGITS}d}"


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 structured-mode event; ``usertz`` is Momentum's extension attribute.

    ``traceparent`` and ``tracestate`` are the CloudEvents Distributed Tracing extension: the
    W3C trace context of the span that published the event, set by the relay when tracing
    is on (the same values as the message's headers).
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(default_factory=lambda: str(uuid.uuid4()), min_length=1)
    source: str = Field(min_length=1)
    type: str = Field(min_length=1)
    subject: str | None = None
    time: UtcDateTime = Field(default_factory=utcnow)
    datacontenttype: str = "application/json"
    usertz: str | None = None
    traceparent: str | None = Field(
        default=None,
        description="W3C traceparent of the span that published the event (Distributed Tracing)",
    )
    tracestate: str | None = Field(
        default=None, description="W3C tracestate that goes with traceparent, when there is one"
    )
    partitionkey: str | None = Field(
        default=None,
        description="the thing the event changes, e.g. task/<id> (CloudEvents Partitioning)",
    )
    sequence: str | None = Field(
        default=None,
        pattern=rf"^[0-9]{{{SEQUENCE_DIGITS}}}$",
        description="the event's position among its partitionkey's events, from 1 without gaps,"
        " zero-padded to 20 digits (CloudEvents Sequence)",
    )
    data: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def of(
        cls,
        data: EventData,
        *,
        source: str,
        subject: str | None = None,
        usertz: str | None = None,
        time: datetime | None = None,
        id: str | None = None,
        partitionkey: str | None = None,
        sequence: int | None = None,
    ) -> CloudEvent:
        """Wrap typed event data in an envelope whose ``type`` is the data's event type."""
        return cls(
            id=id or str(uuid.uuid4()),
            source=source,
            type=data.event_type,
            subject=subject,
            time=time or utcnow(),
            usertz=usertz,
            partitionkey=partitionkey,
            sequence=None if sequence is None else sequence_of(sequence),
            data=data.model_dump(mode="json"),
        )

    def to_json(self) -> bytes:
        # Optional attributes are omitted when unset (CloudEvents 1.0); data keeps its nulls.
        absent = {name for name in _OPTIONAL_ATTRIBUTES if getattr(self, name) is None}
        return self.model_dump_json(exclude=absent).encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> CloudEvent:
        return cls.model_validate_json(raw)

    def typed_data(self) -> EventData | None:
        """The typed data for a known type, or ``None`` for a type this code does not know."""
        model = EVENT_TYPES.get(self.type)
        if model is None:
            return None
        return model.model_validate(self.data)


__all__ = [
    "AUTH_STREAM",
    "CLOUDEVENTS_CONTENT_TYPE",
    "EVENT_TYPES",
    "STREAM_SUBJECTS",
    "TASK_STREAM",
    "CloudEvent",
    "EventData",
    "ProjectCreated",
    "ProjectDeleted",
    "ProjectUpdated",
    "SessionRevoked",
    "TaskCompleted",
    "TaskCreated",
    "TaskDeleted",
    "TaskReopened",
    "TaskUpdated",
    "UserLoggedIn",
    "UserRegistered",
    "UserUpdated",
    "ValidationError",
    "format_utc",
    "sequence_of",
    "utcnow",
]
