"""Test helpers: event builders, publishing to JetStream, waiting for the consumer to drain."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nats.js.errors import NotFoundError

from momentum_shared.events import (
    AUTH_STREAM,
    CLOUDEVENTS_CONTENT_TYPE,
    TASK_STREAM,
    CloudEvent,
    format_utc,
)
from momentum_shared.nats import connect, ensure_stream
from services.analytics.tests.reference import Event

ALEMBIC_INI = Path(__file__).resolve().parents[1] / "alembic.ini"


@dataclass
class FixedClock:
    """The app's clock: tests move ``now`` to pin "today"."""

    now: datetime = field(default_factory=lambda: datetime(2026, 11, 26, 12, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now


def at(text: str) -> datetime:
    """``2026-03-08T06:59:00Z`` → an aware UTC datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def cloud_event(
    type_: str,
    user_id: uuid.UUID,
    when: datetime,
    *,
    usertz: str | None,
    event_id: str | None = None,
    **data: Any,
) -> CloudEvent:
    source = "/momentum/auth" if type_.startswith("auth.") else "/momentum/tasks"
    return CloudEvent(
        id=event_id or str(uuid.uuid4()),
        source=source,
        type=type_,
        subject=str(user_id),
        time=when,
        usertz=usertz,
        data={"user_id": str(user_id), **data},
    )


def registered(user_id: uuid.UUID, when: datetime, timezone: str, **kw: Any) -> CloudEvent:
    return cloud_event("auth.user.registered", user_id, when, timezone=timezone, **kw)


def updated(user_id: uuid.UUID, when: datetime, timezone: str, **kw: Any) -> CloudEvent:
    return cloud_event("auth.user.updated", user_id, when, timezone=timezone, **kw)


def logged_in(
    user_id: uuid.UUID, when: datetime, method: str = "password", **kw: Any
) -> CloudEvent:
    return cloud_event("auth.user.logged_in", user_id, when, method=method, **kw)


def created(user_id: uuid.UUID, when: datetime, task_id: uuid.UUID, **kw: Any) -> CloudEvent:
    return cloud_event(
        "tasks.task.created",
        user_id,
        when,
        task_id=str(task_id),
        priority="normal",
        due_at=None,
        created_at=format_utc(when),
        **kw,
    )


def completed(user_id: uuid.UUID, when: datetime, task_id: uuid.UUID, **kw: Any) -> CloudEvent:
    return cloud_event(
        "tasks.task.completed",
        user_id,
        when,
        task_id=str(task_id),
        completed_at=format_utc(when),
        due_at=None,
        **kw,
    )


def as_reference(event: CloudEvent) -> Event:
    return Event(
        id=event.id,
        type=event.type,
        user_id=uuid.UUID(str(event.data["user_id"])),
        time=event.time,
        usertz=event.usertz,
        data=dict(event.data),
    )


async def publish(
    nats_url: str, events: Iterable[CloudEvent], *, raw: Sequence[tuple[str, bytes]] = ()
) -> None:
    """Publish events as the producers do (creating the streams if needed).

    A repeated event gets a fresh ``Nats-Msg-Id``, as after a relay resend outside the
    duplicate window, so it really reaches the consumer twice.
    """
    nc = await connect(nats_url, name="analytics-tests")
    try:
        js = nc.jetstream()
        for stream in (AUTH_STREAM, TASK_STREAM):
            await ensure_stream(js, stream)
        seen: dict[str, int] = {}
        for event in events:
            copies = seen.get(event.id, 0)
            seen[event.id] = copies + 1
            msg_id = event.id if copies == 0 else f"{event.id}#{copies}"
            await js.publish(
                event.type,
                event.to_json(),
                headers={"Content-Type": CLOUDEVENTS_CONTENT_TYPE, "Nats-Msg-Id": msg_id},
            )
        for subject, payload in raw:
            await js.publish(subject, payload)
    finally:
        await nc.close()


async def wait_drained(nats_url: str, *, durable: str = "analytics", timeout: float = 60.0) -> None:
    """Until the durable has delivered and settled everything in both streams."""
    nc = await connect(nats_url, name="analytics-tests-drain")
    deadline = time.monotonic() + timeout
    try:
        js = nc.jetstream()
        while True:
            settled = True
            for stream in (AUTH_STREAM, TASK_STREAM):
                try:
                    info = await js.consumer_info(stream, durable)
                except NotFoundError:
                    settled = False
                    break
                if info.num_pending or info.num_ack_pending:
                    settled = False
                    break
            if settled:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"the analytics consumer did not drain within {timeout}s")
            await asyncio.sleep(0.02)
    finally:
        await nc.close()
