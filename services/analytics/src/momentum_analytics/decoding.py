"""The events analytics consumes (docs/spec/events.md), decoded into what its projections need."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import ValidationError

from momentum_shared.events import (
    CloudEvent,
    TaskCompleted,
    TaskCreated,
    TaskUpdated,
    UserLoggedIn,
    UserRegistered,
    UserUpdated,
)
from momentum_shared.validation import valid_timezone

FactKind = Literal[
    "timezone", "login_password", "login_refresh", "created", "completed", "repriced"
]

# Types that change a projection; every other type is acknowledged and ignored.
PROJECTED_TYPES = frozenset(
    {
        UserRegistered.event_type,
        UserUpdated.event_type,
        UserLoggedIn.event_type,
        TaskCreated.event_type,
        TaskUpdated.event_type,  # for its priority (docs/spec/analytics.md rule 11)
        TaskCompleted.event_type,
    }
)


# The inbox's event_id column (models.ProcessedEvent).
MAX_EVENT_ID_LENGTH = 200


class PoisonEvent(ValueError):
    """A message that can never be applied: not a CloudEvent, or data that breaks its contract."""


@dataclass(frozen=True, slots=True)
class Fact:
    """What one event contributes, before it is placed on a user's local day."""

    event_id: str
    event_type: str
    user_id: uuid.UUID
    occurred_at: datetime  # aware, UTC
    kind: FactKind
    usertz: str | None = None  # only a valid IANA name; None means "use the fallback"
    task_id: uuid.UUID | None = None
    timezone: str | None = None  # the announced timezone of a registered/updated event
    # The CloudEvent's Distributed Tracing attributes (the span that published it): the
    # consumer's spans fall back to them when a message carries no trace headers.
    traceparent: str | None = None
    tracestate: str | None = None
    priority: str | None = None  # a created task's priority, or a changed one's (repriced)
    completed_at: datetime | None = None  # a completion's completed_at (aware, UTC)
    due_at: datetime | None = None  # a completion's due_at (aware, UTC), None: undated


def decode(payload: bytes) -> Fact | None:
    """The fact of a message, ``None`` for a type analytics ignores; raises ``PoisonEvent``."""
    try:
        event = CloudEvent.from_json(payload)
    except ValidationError as exc:
        raise PoisonEvent(f"not a CloudEvent: {_summary(exc)}") from None
    if event.type not in PROJECTED_TYPES:
        return None
    # The inbox could never record these ids on PostgreSQL (text refuses NUL, the column
    # holds 200 characters); refusing them here treats both databases alike.
    if "\x00" in event.id:
        raise PoisonEvent("the event id contains a NUL character")
    if len(event.id) > MAX_EVENT_ID_LENGTH:
        raise PoisonEvent(f"the event id is longer than {MAX_EVENT_ID_LENGTH} characters")
    try:
        data = event.typed_data()
    except ValidationError as exc:
        raise PoisonEvent(f"invalid {event.type} data: {_summary(exc)}") from None
    try:
        return fact_of(event, data)
    except OverflowError:
        # A valid RFC 3339 text can still name an instant outside Python's range in UTC
        # (0001-01-01T00:00:00+14:00): no retry will ever read it.
        raise PoisonEvent(f"time {event.time.isoformat()} is out of range in UTC") from None


def fact_of(event: CloudEvent, data: object) -> Fact | None:
    """The fact of an event whose data has been validated; ``None`` for data analytics ignores."""
    project = _PROJECTIONS.get(type(data))
    if project is None:
        return None
    found = project(data)
    if found is None:
        return None
    user_id, kind, task_id, timezone, priority, completed_at, due_at = found
    moment = event.time
    return Fact(
        event_id=event.id,
        event_type=event.type,
        user_id=user_id,
        occurred_at=moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC),
        kind=kind,
        usertz=valid_timezone(event.usertz),
        task_id=task_id,
        timezone=timezone,
        traceparent=event.traceparent,
        tracestate=event.tracestate,
        priority=priority,
        completed_at=completed_at,
        due_at=due_at,
    )


# What a fact takes from its event's data: user, kind, task, timezone, priority,
# completed_at, due_at.
_Projected = tuple[
    uuid.UUID, FactKind, uuid.UUID | None, str | None, str | None, datetime | None, datetime | None
]


def _timezone(data: UserRegistered | UserUpdated) -> _Projected:
    # An invalid timezone teaches nothing about the user; the event is still recorded.
    return (data.user_id, "timezone", None, valid_timezone(data.timezone), None, None, None)


def _login(data: UserLoggedIn) -> _Projected:
    kind: FactKind = "login_password" if data.method == "password" else "login_refresh"
    return (data.user_id, kind, None, None, None, None, None)


def _created(data: TaskCreated) -> _Projected:
    return (data.user_id, "created", data.task_id, None, data.priority, None, None)


def _repriced(data: TaskUpdated) -> _Projected | None:
    if data.priority is None:
        return None
    # Counts nothing on a day: the task's priority as last known (docs/spec/analytics.md
    # rule 11).
    return (data.user_id, "repriced", data.task_id, None, data.priority, None, None)


def _completed(data: TaskCompleted) -> _Projected:
    due_at = None if data.due_at is None else _utc(data.due_at)
    return (data.user_id, "completed", data.task_id, None, None, _utc(data.completed_at), due_at)


# Keyed by the data's exact class (typed_data builds exactly these): a dictionary lookup
# instead of isinstance checks against pydantic's ABC metaclass.
_PROJECTIONS: dict[type, Callable[[Any], _Projected | None]] = {
    UserRegistered: _timezone,
    UserUpdated: _timezone,
    UserLoggedIn: _login,
    TaskCreated: _created,
    TaskUpdated: _repriced,
    TaskCompleted: _completed,
}


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _summary(exc: ValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return "invalid"
    where = ".".join(str(part) for part in errors[0]["loc"])
    return f"{where}: {errors[0]['msg']}" if where else errors[0]["msg"]
