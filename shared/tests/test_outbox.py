"""The outbox relay against real SQLite, PostgreSQL and nats-server processes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import nats
import pytest
import sqlalchemy as sa
from nats.js.api import DiscardPolicy
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.orm import registry
from sqlmodel.ext.asyncio.session import AsyncSession

from momentum_devtools.natsserver import EmbeddedNats
from momentum_devtools.testing.databases import require_postgres
from momentum_devtools.testing.resources import asyncpg_url, created_database
from momentum_shared.db import UnitOfWork, create_engine, create_session_factory
from momentum_shared.events import (
    CLOUDEVENTS_CONTENT_TYPE,
    TASK_STREAM,
    CloudEvent,
    TaskReopened,
    utcnow,
)
from momentum_shared.metrics import REGISTRY
from momentum_shared.nats import STREAM_MAX_AGE_SECONDS
from momentum_shared.outbox import (
    OutboxRelay,
    RelaySettings,
    RelayUnavailable,
    enqueue,
    outbox_model,
    run_standalone,
)
from momentum_shared.outbox.__main__ import main

# The table as a producing service declares it, on metadata of its own.
OutboxEvent = outbox_model(registry())
OUTBOX = OutboxEvent.__table__


@pytest.fixture
def database_url(blank_database_url: str) -> str:
    return blank_database_url


@pytest.fixture
def postgres_url(postgres_admin_url: str | None, run_id: str, tmp_path: Path) -> Iterator[str]:
    require_postgres(postgres_admin_url)
    assert postgres_admin_url is not None
    name = f"momentum_test_outbox_{run_id}_{uuid.uuid4().hex[:8]}"
    with created_database(postgres_admin_url, name) as url:
        yield asyncpg_url(url)


async def _engine(url: str) -> AsyncEngine:
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(lambda sync: OUTBOX.create(sync))
    return engine


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = await _engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_session_factory(engine)


def an_event(user: uuid.UUID | None = None) -> CloudEvent:
    user = user or uuid.uuid4()
    return CloudEvent.of(
        TaskReopened(task_id=uuid.uuid4(), user_id=user),
        source="/momentum/tasks",
        subject=str(user),
        usertz="Europe/Berlin",
    )


async def add_events(sessions: async_sessionmaker[AsyncSession], count: int) -> list[str]:
    events = [an_event() for _ in range(count)]
    async with UnitOfWork(sessions) as uow:
        for event in events:
            enqueue(uow.session, OutboxEvent, event)
    return [event.id for event in events]


def relay_for(sessions: async_sessionmaker[AsyncSession], url: str, **kwargs: Any) -> OutboxRelay:
    options: dict[str, Any] = {
        "batch_size": 100,
        "poll_interval_seconds": 0.05,
        "publish_timeout_seconds": 2.0,
    }
    options.update(kwargs)
    settings = RelaySettings(nats_url=url, **options)
    return OutboxRelay(sessions, OUTBOX, service="tasks", streams=[TASK_STREAM], settings=settings)


async def stream_messages(url: str, stream: str = TASK_STREAM) -> list[tuple[str, Any, bytes]]:
    """Every message in ``stream``: (subject, headers, data), in stream order."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        out = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            if info.state.messages == 0:
                break
            msg = await js.get_msg(stream, seq)
            out.append((msg.subject or "", msg.headers, msg.data or b""))
        return out
    finally:
        await nc.close()


async def unpublished(engine: AsyncEngine) -> int:
    query = sa.select(sa.func.count()).select_from(OUTBOX).where(OUTBOX.c.published_at.is_(None))
    async with engine.connect() as connection:
        return int((await connection.execute(query)).scalar_one())


def backlog_metric(service: str = "tasks") -> float | None:
    return REGISTRY.get_sample_value("momentum_outbox_backlog", {"service": service})


async def test_publishes_each_row_as_a_cloudevent_and_marks_it(
    sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine, nats_url: str
) -> None:
    ids = await add_events(sessions, 250)
    relay = relay_for(sessions, nats_url)
    try:
        total = 0
        while (published := await relay.relay_once()) > 0:
            total += published
        assert total == 250
        assert await unpublished(engine) == 0
        assert relay.status()["backlog"] == 0
        assert backlog_metric() == 0
    finally:
        await relay.aclose()

    messages = await stream_messages(nats_url)
    assert [headers["Nats-Msg-Id"] for _, headers, _ in messages] == ids  # in commit order
    for subject, headers, data in messages:
        event = CloudEvent.from_json(data)
        assert subject == event.type == "tasks.task.reopened"
        assert headers["Nats-Msg-Id"] == event.id
        assert headers["Content-Type"] == CLOUDEVENTS_CONTENT_TYPE
        assert event.usertz == "Europe/Berlin"


async def test_a_rolled_back_change_leaves_nothing_to_publish(
    sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine, nats_url: str
) -> None:
    async def change_that_fails() -> None:
        async with UnitOfWork(sessions) as uow:
            enqueue(uow.session, OutboxEvent, an_event())
            await uow.session.flush()
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await change_that_fails()
    relay = relay_for(sessions, nats_url)
    try:
        assert await relay.relay_once() == 0
    finally:
        await relay.aclose()
    assert await unpublished(engine) == 0
    assert await stream_messages(nats_url) == []


async def test_backlog_is_exported_while_nats_is_unreachable(
    sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine, tmp_path: Path
) -> None:
    await add_events(sessions, 3)
    closed_port = EmbeddedNats(tmp_path / "unused").port
    relay = relay_for(sessions, f"nats://127.0.0.1:{closed_port}", connect_timeout_seconds=1.0)
    try:
        with pytest.raises(RelayUnavailable):
            await relay.relay_once()
        await relay.refresh_backlog()
        status = relay.status()
        assert status["connected"] is False
        assert status["backlog"] == 3
        assert backlog_metric() == 3
        # Nothing was charged to the rows: an outage is not their fault.
        async with engine.connect() as connection:
            attempts = (await connection.execute(sa.select(OUTBOX.c.attempts))).scalars().all()
        assert list(attempts) == [0, 0, 0]
    finally:
        await relay.aclose()


async def test_outage_then_recovery_publishes_everything_exactly_once(
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    nats_server_factory: type[EmbeddedNats],
    tmp_path: Path,
) -> None:
    server = nats_server_factory(tmp_path / "nats")
    server.start()
    relay = relay_for(sessions, server.url)
    task = asyncio.create_task(relay.run())
    try:
        before = await add_events(sessions, 20)
        await wait_until(lambda: unpublished_is(engine, 0))
        server.stop()
        await wait_until(lambda: _async(not relay.status()["connected"]))
        # Writes keep landing in the outbox while NATS is gone.
        during = await add_events(sessions, 30)
        assert await unpublished(engine) == 30
        server.start()
        after = await add_events(sessions, 10)
        await wait_until(lambda: unpublished_is(engine, 0))
        assert relay.status()["connected"] is True
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await relay.aclose()
    ids = [headers["Nats-Msg-Id"] for _, headers, _ in await stream_messages(server.url)]
    assert sorted(ids) == sorted(before + during + after)
    assert len(ids) == len(set(ids)) == 60


async def test_a_stream_is_created_with_the_limits_of_the_settings_and_then_left_as_it_is(
    sessions: async_sessionmaker[AsyncSession], nats_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="momentum.nats")
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    relay = relay_for(
        sessions, nats_url, stream_max_bytes=64 * 1024**2, stream_max_age_seconds=7 * 86400
    )
    try:
        await relay.relay_once()
        config = (await js.stream_info(TASK_STREAM)).config
        assert config.max_bytes == 64 * 1024**2
        assert config.max_age == 7 * 86400
        assert config.discard == DiscardPolicy.OLD
        await relay.aclose()
        # An operator raised the limits (as the NATS admin): a relay starting later, with
        # the defaults in its settings, keeps them and goes on publishing.
        config.max_age = 30 * 86400.0
        config.max_bytes = 256 * 1024**2
        await js.update_stream(config)
        await add_events(sessions, 1)
        relay = relay_for(sessions, nats_url)
        assert relay.settings.stream_max_age_seconds == STREAM_MAX_AGE_SECONDS
        assert await relay.relay_once() == 1
        kept = (await js.stream_info(TASK_STREAM)).config
        assert (kept.max_age, kept.max_bytes) == (30 * 86400.0, 256 * 1024**2)
        assert relay.status()["streams_ready"] is True
        assert any("limits differ" in record.getMessage() for record in caplog.records)
        assert not any("configuration differs" in r.getMessage() for r in caplog.records)
        await relay.aclose()
        # A part the code owns (the duplicate window) is reported for an operator to apply,
        # and left as it is too.
        kept.duplicate_window = 30.0
        await js.update_stream(kept)
        relay = relay_for(sessions, nats_url)
        await add_events(sessions, 1)
        assert await relay.relay_once() == 1
        assert (await js.stream_info(TASK_STREAM)).config.duplicate_window == 30.0
        assert any("configuration differs" in record.getMessage() for record in caplog.records)
    finally:
        await relay.aclose()
        await nc.close()


async def test_a_stream_that_refuses_every_event_is_an_outage_until_it_accepts_again(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], nats_url: str
) -> None:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    relay = relay_for(sessions, nats_url, row_retry_delay_seconds=0.1)
    labels = {"service": "tasks"}
    try:
        await add_events(sessions, 2)
        assert await relay.relay_once() == 2
        assert relay.status()["status"] == "ok"
        assert relay.status()["publish_refused"] is None
        # An operator sized the stream to refuse new events once it holds two.
        config = (await js.stream_info(TASK_STREAM)).config
        config.max_msgs = 2
        config.discard = DiscardPolicy.NEW
        await js.update_stream(config)
        await add_events(sessions, 3)
        assert await relay.relay_once() == 0
        status = relay.status()
        assert status["status"] == "degraded"
        assert "maximum messages" in status["publish_refused"]
        assert status["refused_since"] is not None
        assert REGISTRY.get_sample_value("momentum_outbox_publish_refused", labels) == 1.0
        assert await unpublished(engine) == 3
        # Raised again: the waiting events go out and the outage is over.
        config.max_msgs = -1
        await js.update_stream(config)
        for _ in range(3):
            await relay.relay_once()
            if await unpublished(engine) == 0:
                break
            await asyncio.sleep(0.2)
        assert await unpublished(engine) == 0
        assert relay.status()["status"] == "ok"
        assert relay.status()["publish_refused"] is None
        assert REGISTRY.get_sample_value("momentum_outbox_publish_refused", labels) == 0.0
        assert (await js.stream_info(TASK_STREAM)).state.messages == 5
    finally:
        await relay.aclose()
        await nc.close()


async def test_published_rows_are_deleted_after_the_retention_period(
    sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine, nats_url: str
) -> None:
    await add_events(sessions, 4)
    relay = relay_for(sessions, nats_url, retention_seconds=timedelta(days=7).total_seconds())
    try:
        await relay.relay_once()
        pending = await add_events(sessions, 2)
        assert await relay.purge_published() == 0  # just published: kept
        assert await relay.purge_published(now=utcnow() + timedelta(days=8)) == 4
    finally:
        await relay.aclose()
    async with engine.connect() as connection:
        left = (await connection.execute(sa.select(OUTBOX.c.id))).scalars().all()
    assert sorted(left) == sorted(pending)


async def test_one_relay_per_sqlite_file_the_other_stands_by(tmp_path: Path, nats_url: str) -> None:
    engine = await _engine(f"sqlite+aiosqlite:///{tmp_path / 'single.db'}")
    sessions = create_session_factory(engine)
    first, second = relay_for(sessions, nats_url), relay_for(sessions, nats_url)
    try:
        await add_events(sessions, 3)
        assert await first.relay_once() == 3
        await add_events(sessions, 2)
        with pytest.raises(RelayUnavailable, match="standing by"):
            await second.relay_once()
        assert await unpublished(engine) == 2
        await first.aclose()  # the lease goes with it
        assert await second.relay_once() == 2
    finally:
        await first.aclose()
        await second.aclose()
        await engine.dispose()
    assert len(await stream_messages(nats_url)) == 5


async def test_replicas_skip_rows_another_relay_holds(postgres_url: str, nats_url: str) -> None:
    engine = await _engine(postgres_url)
    sessions = create_session_factory(engine)
    try:
        ids = await add_events(sessions, 30)
        relay = relay_for(sessions, nats_url, batch_size=100)
        async with engine.connect() as holder, holder.begin():
            # Another replica is mid-batch on the ten oldest rows.
            held = (
                (
                    await holder.execute(
                        sa.select(OUTBOX.c.id)
                        .order_by(OUTBOX.c.created_at, OUTBOX.c.id)
                        .limit(10)
                        .with_for_update()
                    )
                )
                .scalars()
                .all()
            )
            assert await relay.relay_once() == 20
        assert await relay.relay_once() == 10
        await relay.aclose()
        published = [h["Nats-Msg-Id"] for _, h, _ in await stream_messages(nats_url)]
        assert published[-10:] == list(held)
        assert sorted(published) == sorted(ids)
    finally:
        await engine.dispose()


async def test_concurrent_replicas_publish_each_row_once(postgres_url: str, nats_url: str) -> None:
    engine = await _engine(postgres_url)
    sessions = create_session_factory(engine)
    try:
        ids = await add_events(sessions, 600)
        relays = [relay_for(sessions, nats_url, batch_size=50) for _ in range(3)]

        async def drain(relay: OutboxRelay) -> int:
            total = 0
            while (published := await relay.relay_once()) > 0:
                total += published
            return total

        counts = await asyncio.gather(*(drain(relay) for relay in relays))
        for relay in relays:
            await relay.aclose()
        assert sum(counts) == 600
        published = [h["Nats-Msg-Id"] for _, h, _ in await stream_messages(nats_url)]
        assert sorted(published) == sorted(ids)
    finally:
        await engine.dispose()


async def test_the_standalone_relay_publishes_a_services_outbox(
    database_url: str, engine: AsyncEngine, nats_url: str
) -> None:
    ids = await add_events(create_session_factory(engine), 5)
    relay = asyncio.create_task(
        run_standalone(
            service="tasks",
            database_url=database_url,
            streams=[TASK_STREAM],
            settings=RelaySettings(nats_url=nats_url, poll_interval_seconds=0.05),
        )
    )
    try:
        await wait_until(lambda: unpublished_is(engine, 0))
    finally:
        relay.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await relay
    published = [h["Nats-Msg-Id"] for _, h, _ in await stream_messages(nats_url)]
    assert published == ids


async def test_the_standalone_relay_declares_streams_with_the_replicas_it_is_given(
    database_url: str, engine: AsyncEngine, nats_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A single nats-server refuses replicated streams: a relay that passes the operator's
    # replica count on is refused, one that dropped it would quietly declare one replica
    # (and, beside replicated in-process relays, rewrite their stream's replication).
    await add_events(create_session_factory(engine), 1)
    relay = asyncio.create_task(
        run_standalone(
            service="tasks",
            database_url=database_url,
            streams=[TASK_STREAM],
            settings=RelaySettings(
                nats_url=nats_url, poll_interval_seconds=0.05, stream_replicas=3
            ),
        )
    )

    async def refused() -> bool:
        return any("replicas" in str(getattr(r, "error", "")) for r in caplog.records)

    try:
        await wait_until(refused)
    finally:
        relay.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await relay
    assert await unpublished(engine) == 1


def test_the_standalone_entry_requires_a_database() -> None:
    with pytest.raises(SystemExit):
        main(["--service", "tasks", "--stream", TASK_STREAM])


def test_the_standalone_entry_requires_the_streams_from_its_caller() -> None:
    with pytest.raises(SystemExit):
        main(["--service", "tasks", "--database-url", "sqlite+aiosqlite:///unused.db"])


async def _async(value: bool) -> bool:
    return value


async def unpublished_is(engine: AsyncEngine, expected: int) -> bool:
    return await unpublished(engine) == expected


async def wait_until(condition: Any, *, timeout: float = 30.0) -> None:
    """Poll an async condition; the timeout only stops a broken test from hanging."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


# --- wake-ups: a commit wakes the relay; the poll (30 s here) is only the safety net --------

SLOW_POLL = 30.0


async def wait_for(condition: Any, *, timeout: float = 10.0) -> None:
    """Poll ``condition`` (sync or async) until true; fail after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def published_ids(url: str) -> set[str]:
    try:
        return {h["Nats-Msg-Id"] for _, h, _ in await stream_messages(url)}
    except Exception:  # the stream does not exist yet
        return set()


@contextlib.asynccontextmanager
async def running(relay: OutboxRelay) -> AsyncIterator[OutboxRelay]:
    task = asyncio.create_task(relay.run())
    try:
        yield relay
    finally:
        await relay.aclose()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def settled(relay: OutboxRelay, sessions: async_sessionmaker[AsyncSession], url: str) -> None:
    """Let ``relay`` publish a first row and fall into its long poll sleep."""
    first = await add_events(sessions, 1)
    await wait_for(lambda: all_published(url, first))
    await asyncio.sleep(0.3)


async def all_published(url: str, ids: list[str]) -> bool:
    return set(ids) <= await published_ids(url)


async def test_a_commit_wakes_the_relay_in_process_without_waiting_for_the_poll(
    sessions: async_sessionmaker[AsyncSession], nats_url: str
) -> None:
    async with running(relay_for(sessions, nats_url, poll_interval_seconds=SLOW_POLL)) as relay:
        await settled(relay, sessions, nats_url)
        ids = await add_events(sessions, 3)
        # Only the commit's wake can publish these before the 30 s poll.
        await wait_for(lambda: all_published(nats_url, ids))


async def test_a_rolled_back_transaction_wakes_nobody_and_publishes_nothing(
    sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine, nats_url: str
) -> None:
    async with running(relay_for(sessions, nats_url, poll_interval_seconds=SLOW_POLL)) as relay:
        await settled(relay, sessions, nats_url)
        async with sessions() as session:
            enqueue(session, OutboxEvent, an_event())
            await session.flush()
            await session.rollback()
        (later,) = await add_events(sessions, 1)
        await wait_for(lambda: all_published(nats_url, [later]))
        assert len(await published_ids(nats_url)) == 2
        assert await unpublished(engine) == 0


async def test_a_commit_on_another_replica_wakes_the_listening_relays(
    postgres_url: str, nats_url: str
) -> None:
    engines = [
        await _engine(postgres_url),
        create_engine(postgres_url),
        create_engine(postgres_url),
    ]
    a, b, writer = (create_session_factory(engine) for engine in engines)
    try:
        async with (
            running(relay_for(a, nats_url, poll_interval_seconds=SLOW_POLL)) as first,
            running(relay_for(b, nats_url, poll_interval_seconds=SLOW_POLL)) as second,
        ):
            await wait_for(lambda: first.listening and second.listening)
            await settled(first, writer, nats_url)
            # The writer's engine runs no relay here: only the NOTIFY reaches the relays.
            ids = await add_events(writer, 5)
            await wait_for(lambda: all_published(nats_url, ids))
            assert first.status()["listening"] is True
    finally:
        for engine in engines:
            await engine.dispose()


async def test_a_lost_listener_reconnects_and_wakes_the_relay_again(
    postgres_url: str, nats_url: str
) -> None:
    relay_engine, writer_engine = await _engine(postgres_url), create_engine(postgres_url)
    sessions, writer = create_session_factory(relay_engine), create_session_factory(writer_engine)
    listeners = sa.text(
        "SELECT pid FROM pg_stat_activity"
        " WHERE datname = current_database() AND query ILIKE 'LISTEN%'"
    )

    async def listener_pids() -> list[int]:
        async with writer_engine.connect() as connection:
            return list((await connection.execute(listeners)).scalars().all())

    try:
        async with running(relay_for(sessions, nats_url, poll_interval_seconds=SLOW_POLL)) as relay:
            await wait_for(lambda: relay.listening)
            await settled(relay, writer, nats_url)
            (lost,) = await listener_pids()
            async with writer_engine.begin() as connection:
                terminate = sa.text("SELECT pg_terminate_backend(:pid)")
                assert (await connection.execute(terminate, {"pid": lost})).scalar_one()

            async def listening_again() -> bool:
                pids = await listener_pids()
                return relay.listening and len(pids) == 1 and lost not in pids

            await wait_for(listening_again)
            ids = await add_events(writer, 2)
            await wait_for(lambda: all_published(nats_url, ids))
    finally:
        await relay_engine.dispose()
        await writer_engine.dispose()
