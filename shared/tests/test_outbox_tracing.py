"""Trace context through the outbox, on SQLite, PostgreSQL and a real NATS server.

The transaction that writes a row keeps its span's context; the relay publishes the row in
a PRODUCER span that is a child of it and carries that span's context on the message, as
headers and as CloudEvent attributes; the revocation listener links to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest
import sqlalchemy as sa
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.orm import registry
from sqlmodel.ext.asyncio.session import AsyncSession

from momentum_devtools.testing.revocations import eventually
from momentum_shared.db import UnitOfWork, create_engine, create_session_factory
from momentum_shared.events import (
    AUTH_STREAM,
    TASK_STREAM,
    CloudEvent,
    SessionRevoked,
    TaskReopened,
)
from momentum_shared.outbox import OutboxRelay, RelaySettings, enqueue, outbox_model
from momentum_shared.security import RevocationList, RevocationListener

OutboxEvent = outbox_model(registry())
OUTBOX = OutboxEvent.__table__

tracer = trace.get_tracer("tests")

# A caller's context with vendor state, as a client or an upstream proxy would send it.
CALLER = {"traceparent": f"00-{'ab' * 16}-{'cd' * 8}-01", "tracestate": "momentum=test"}


@pytest.fixture
def database_url(blank_database_url: str) -> str:
    return blank_database_url


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        await connection.run_sync(lambda sync: OUTBOX.create(sync))
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_session_factory(engine)


def an_event() -> CloudEvent:
    user = uuid.uuid4()
    return CloudEvent.of(
        TaskReopened(task_id=uuid.uuid4(), user_id=user),
        source="/momentum/tasks",
        subject=str(user),
        usertz="Europe/Berlin",
    )


async def write(sessions: async_sessionmaker[AsyncSession], event: CloudEvent) -> None:
    async with UnitOfWork(sessions) as uow:
        enqueue(uow.session, OutboxEvent, event)


async def write_in_a_request(
    sessions: async_sessionmaker[AsyncSession], event: CloudEvent
) -> ReadableSpan:
    """Write ``event`` inside a span that continues the caller's trace; that span."""
    with tracer.start_as_current_span("request", context=propagate.extract(CALLER)) as span:
        await write(sessions, event)
    assert isinstance(span, ReadableSpan)
    return span


def relay_for(
    sessions: async_sessionmaker[AsyncSession], url: str, stream: str = TASK_STREAM
) -> OutboxRelay:
    settings = RelaySettings(nats_url=url, poll_interval_seconds=0.05, publish_timeout_seconds=2.0)
    return OutboxRelay(sessions, OUTBOX, service="tasks", streams=[stream], settings=settings)


async def relay_all(relay: OutboxRelay) -> int:
    total = 0
    try:
        while (published := await relay.relay_once()) > 0:
            total += published
    finally:
        await relay.aclose()
    return total


async def stream_messages(url: str, stream: str = TASK_STREAM) -> list[tuple[Any, bytes]]:
    """Every message in ``stream``: (headers, data), in stream order."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        if info.state.messages == 0:
            return []
        out = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg(stream, seq)
            out.append((msg.headers or {}, msg.data or b""))
        return out
    finally:
        await nc.close()


def producers(traces: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in traces.get_finished_spans() if s.kind == trace.SpanKind.PRODUCER]


def traceparent_of(span: ReadableSpan) -> str:
    assert span.context is not None
    return f"00-{span.context.trace_id:032x}-{span.context.span_id:016x}-01"


async def stored_trace_contexts(engine: AsyncEngine) -> list[str | None]:
    async with engine.connect() as connection:
        rows = await connection.execute(sa.select(OUTBOX.c.trace_context))
        return list(rows.scalars())


async def test_an_event_written_in_a_request_is_published_in_that_requests_trace(
    traces: InMemorySpanExporter,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    nats_url: str,
) -> None:
    event = an_event()
    request = await write_in_a_request(sessions, event)
    assert request.context is not None
    [stored] = await stored_trace_contexts(engine)
    assert stored is not None
    assert json.loads(stored)["traceparent"] == traceparent_of(request)

    assert await relay_all(relay_for(sessions, nats_url)) == 1

    [publish] = producers(traces)
    assert publish.name == "publish tasks.task.reopened"
    assert publish.parent is not None
    assert publish.parent.span_id == request.context.span_id
    assert publish.context is not None
    assert publish.context.trace_id == request.context.trace_id == int("ab" * 16, 16)
    assert publish.attributes is not None
    assert publish.attributes["messaging.system"] == "nats"
    assert publish.attributes["messaging.destination.name"] == "tasks.task.reopened"
    assert publish.attributes["messaging.message.id"] == event.id
    assert publish.status.is_ok

    [(headers, data)] = await stream_messages(nats_url)
    assert headers["Nats-Msg-Id"] == event.id
    assert headers["traceparent"] == traceparent_of(publish)
    assert headers["tracestate"] == "momentum=test"
    published = CloudEvent.from_json(data)
    assert published.traceparent == traceparent_of(publish)
    assert published.tracestate == "momentum=test"
    # Apart from its trace attributes, the event is the one the service wrote.
    assert published.model_copy(update={"traceparent": None, "tracestate": None}) == event


async def test_a_running_relay_traces_its_publishes_but_not_its_own_polling(
    traces: InMemorySpanExporter,
    sessions: async_sessionmaker[AsyncSession],
    nats_url: str,
) -> None:
    request = await write_in_a_request(sessions, an_event())
    traces.clear()  # the tables' creation and the request's INSERT
    relay = relay_for(sessions, nats_url)
    worker = asyncio.create_task(relay.run())
    try:
        async with asyncio.timeout(10):
            while not producers(traces):
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)  # several more polls of an empty outbox
    finally:
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
        await relay.aclose()
    # The publish, in the request's trace; none of the claims, marks and counts of polling.
    [publish] = traces.get_finished_spans()
    assert publish.kind == trace.SpanKind.PRODUCER
    assert publish.context is not None
    assert request.context is not None
    assert publish.context.trace_id == request.context.trace_id


async def test_an_event_written_outside_any_span_is_published_exactly_as_stored(
    traces: InMemorySpanExporter,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    nats_url: str,
) -> None:
    event = an_event()
    await write(sessions, event)
    assert await stored_trace_contexts(engine) == [None]

    assert await relay_all(relay_for(sessions, nats_url)) == 1

    assert producers(traces) == []
    [(headers, data)] = await stream_messages(nats_url)
    assert "traceparent" not in headers
    assert "tracestate" not in headers
    assert data == event.to_json()


async def test_a_traced_row_published_again_is_still_dropped_as_a_duplicate(
    traces: InMemorySpanExporter,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    nats_url: str,
) -> None:
    event = an_event()
    await write_in_a_request(sessions, event)
    assert await relay_all(relay_for(sessions, nats_url)) == 1
    # As after a crash between the publish and the mark: the row is due again.
    async with engine.begin() as connection:
        await connection.execute(sa.update(OUTBOX).values(published_at=None))
    assert await relay_all(relay_for(sessions, nats_url)) == 1

    # Each attempt is its own PRODUCER span (so its own traceparent in the payload), yet
    # JetStream keeps the first message only: it deduplicates by Nats-Msg-Id.
    first, second = producers(traces)
    assert first.context is not None
    assert second.context is not None
    assert first.context.span_id != second.context.span_id
    [(headers, _)] = await stream_messages(nats_url)
    assert headers["traceparent"] == traceparent_of(first)


WRITE_WITH_TRACING_OFF = """
import asyncio, sys
import sqlalchemy as sa
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from sqlalchemy.orm import registry
from momentum_shared import tracing
from momentum_shared.db import UnitOfWork, create_engine, create_session_factory
from momentum_shared.events import CloudEvent, TaskReopened
from momentum_shared.outbox import enqueue, outbox_model
import uuid

Outbox = outbox_model(registry())

async def main() -> None:
    assert not tracing.tracing_enabled()
    engine = create_engine(sys.argv[1])
    async with engine.begin() as connection:
        await connection.run_sync(lambda sync: Outbox.__table__.create(sync))
    # A valid context is current, as if a caller's traceparent had been attached.
    caller = SpanContext(0xAB, 0xCD, is_remote=True, trace_flags=TraceFlags(1))
    event = CloudEvent.of(TaskReopened(task_id=uuid.uuid4(), user_id=uuid.uuid4()), source="/t")
    with trace.use_span(NonRecordingSpan(caller)):
        async with UnitOfWork(create_session_factory(engine)) as uow:
            enqueue(uow.session, Outbox, event)
    async with engine.connect() as connection:
        rows = await connection.execute(sa.select(Outbox.__table__.c.trace_context))
        print(list(rows.scalars()))
    await engine.dispose()

asyncio.run(main())
"""


def test_with_tracing_off_a_row_stores_no_trace_context(tmp_path: Path) -> None:
    # A fresh interpreter: once a test has switched tracing on it stays on in this one.
    url = f"sqlite+aiosqlite:///{tmp_path / 'off.db'}"
    environment = {"OTEL_TRACES_EXPORTER": "none", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", WRITE_WITH_TRACING_OFF, url],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[None]"


@pytest.mark.parametrize("blank_database_url", ["sqlite"], indirect=True)
async def test_a_revocation_read_by_a_replica_links_to_the_span_that_published_it(
    traces: InMemorySpanExporter, sessions: async_sessionmaker[AsyncSession], nats_url: str
) -> None:
    session_id = uuid.uuid4()
    user = uuid.uuid4()
    revoked = CloudEvent.of(
        SessionRevoked(
            user_id=user,
            session_id=session_id,
            expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=15),
        ),
        source="/momentum/auth",
        subject=str(user),
    )
    await write_in_a_request(sessions, revoked)
    assert await relay_all(relay_for(sessions, nats_url, AUTH_STREAM)) == 1
    [publish] = producers(traces)

    deny = RevocationList(leeway=0)
    listener = RevocationListener(
        deny, nats_url=nats_url, name="test", horizon=60.0, retry_interval=0.1, heartbeat=0.5
    )
    listener.start()
    try:

        async def revoked_here() -> bool:
            return deny.is_revoked(str(session_id))

        await eventually(revoked_here)
    finally:
        await listener.aclose()
    await asyncio.sleep(0)
    [applied] = [s for s in traces.get_finished_spans() if s.name == "revocations apply"]
    assert applied.kind == trace.SpanKind.CONSUMER
    assert publish.context is not None
    assert applied.context is not None
    # Its own trace, linked to the publish: every replica reads every revocation.
    assert applied.parent is None
    assert [link.context.span_id for link in applied.links] == [publish.context.span_id]
    assert applied.attributes is not None
    assert applied.attributes["messaging.message.id"] == revoked.id
