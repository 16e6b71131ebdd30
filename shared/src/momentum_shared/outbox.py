"""The transactional outbox: events written in the same transaction as the change they describe.

The relay that publishes these rows to JetStream lives here too, so auth and tasks share it.
It runs inside a service (``asyncio.create_task(relay.run())``) or on its own
(``python -m momentum_shared.outbox --service tasks --database-url … --nats-url …``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa
from nats.aio.client import Client as NATS
from nats.errors import ConnectionClosedError, NoServersError, OutboundBufferLimitError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.errors import NoStreamResponseError
from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncSession as SAAsyncSession
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from momentum_shared.events import (
    AUTH_STREAM,
    CLOUDEVENTS_CONTENT_TYPE,
    TASK_STREAM,
    CloudEvent,
    format_utc,
    utcnow,
)
from momentum_shared.metrics import NATS_CONNECTED, REGISTRY
from momentum_shared.nats import NatsAuth, ensure_stream

_flock: Callable[[int], None] | None
try:
    import fcntl

    def _flock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

except ImportError:  # pragma: no cover - Windows
    _flock = None

logger = logging.getLogger("momentum.outbox")


class OutboxEvent(SQLModel, table=True):
    """One event waiting to be (or already) published; ``published_at`` marks it done."""

    __tablename__ = "outbox"

    id: str = Field(primary_key=True, max_length=64)
    subject: str = Field(max_length=200)
    payload: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    created_at: datetime = Field(sa_type=sa.DateTime(timezone=True), default_factory=utcnow)
    available_at: datetime = Field(sa_type=sa.DateTime(timezone=True), default_factory=utcnow)
    published_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=500)


def enqueue(session: AsyncSession, event: CloudEvent) -> OutboxEvent:
    """Add ``event`` to the outbox inside the caller's transaction (flushes, never commits)."""
    row = OutboxEvent(
        id=event.id, subject=event.type, payload=event.to_json(), created_at=event.time
    )
    session.add(row)
    return row


# --- metrics -------------------------------------------------------------------------------

OUTBOX_BACKLOG = Gauge(
    "momentum_outbox_backlog",
    "Outbox rows not yet published to JetStream",
    ["service"],
    registry=REGISTRY,
)
OUTBOX_OLDEST_AGE = Gauge(
    "momentum_outbox_oldest_unpublished_age_seconds",
    "Age of the oldest unpublished outbox row (0 when the backlog is empty)",
    ["service"],
    registry=REGISTRY,
)
OUTBOX_PUBLISHED = Counter(
    "momentum_outbox_published_total",
    "Outbox rows published to JetStream and acknowledged",
    ["service"],
    registry=REGISTRY,
)
OUTBOX_FAILURES = Counter(
    "momentum_outbox_publish_failures_total",
    "Failed relay rounds or rows, by reason",
    ["service", "reason"],
    registry=REGISTRY,
)
OUTBOX_PURGED = Counter(
    "momentum_outbox_purged_total",
    "Published outbox rows deleted after the retention period",
    ["service"],
    registry=REGISTRY,
)

_TABLE: sa.Table = OutboxEvent.__table__  # type: ignore[attr-defined]
_ERRORS_CAUSED_BY_THE_LINK = (
    ConnectionClosedError,
    NoServersError,
    OutboundBufferLimitError,
    NatsTimeoutError,
    TimeoutError,
    OSError,
)

# The streams each producing service owns (docs/spec/events.md §1): the standalone relay's defaults.
SERVICE_STREAMS: dict[str, list[str]] = {"auth": [AUTH_STREAM], "tasks": [TASK_STREAM]}


class RelayUnavailable(Exception):
    """NATS cannot be used right now; the relay backs off and tries again."""


@dataclass(frozen=True, slots=True)
class _Claimed:
    id: str
    subject: str
    payload: bytes


class Backoff:
    """Exponential backoff with full jitter, capped; ``reset()`` after a success."""

    def __init__(self, *, initial: float = 0.1, maximum: float = 10.0) -> None:
        self.initial = initial
        self.maximum = maximum
        self.failures = 0

    def next_delay(self) -> float:
        ceiling = min(self.maximum, self.initial * 2.0 ** min(self.failures, 30))
        self.failures += 1
        # Jitter keeps several replicas from reconnecting in lock step.
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def reset(self) -> None:
        self.failures = 0


class OutboxRelay:
    """Publishes unpublished outbox rows to JetStream and marks them published.

    * Claims: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so any number of replicas can relay
      side by side; on SQLite (no row locks, one writer) a single relay reads without
      holding a write lock, so API writes never wait for NATS.
    * Publishes a whole batch with its acks in flight at once (``publish_async``), with
      ``Nats-Msg-Id`` = event id so a re-publish after a crash is dropped by JetStream.
    * Marks rows ``published_at`` rather than following an id cursor: ids and sequences
      can commit out of order, a cursor would skip rows.
    * Backs off while NATS is down without touching the rows: the API only inserts.
    * Deletes rows published longer than ``retention`` ago.
    """

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession] | async_sessionmaker[SAAsyncSession],
        *,
        nats_url: str,
        service: str,
        streams: Sequence[str],
        batch_size: int = 500,
        poll_interval: float = 0.25,
        retention: timedelta | float = timedelta(days=7),
        publish_timeout: float = 5.0,
        connect_timeout: float = 2.0,
        max_backoff: float = 10.0,
        row_retry_delay: float = 5.0,
        purge_interval: float = 300.0,
        stream_replicas: int = 1,
        nats_auth: NatsAuth | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.session_factory = session_factory
        self.nats_url = nats_url
        self.nats_auth = nats_auth or NatsAuth()
        self.service = service
        self.streams = list(streams)
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        # A number is seconds, so settings can pass a plain float.
        self.retention = (
            retention if isinstance(retention, timedelta) else timedelta(seconds=retention)
        )
        self.publish_timeout = publish_timeout
        self.connect_timeout = connect_timeout
        self.row_retry_delay = row_retry_delay
        self.purge_interval = purge_interval
        self.stream_replicas = stream_replicas
        self._backoff = Backoff(maximum=max_backoff)
        self._nc: NATS | None = None
        self._js: JetStreamContext | None = None
        self._streams_ready = False
        self._wake = asyncio.Event()
        self._last_purge = 0.0
        self._closed = False
        self._dialect: str | None = None
        self._database: str | None = None
        self._lease: IO[bytes] | None = None
        # What status() reports; updated by the loop, read synchronously by /readyz.
        self._backlog: int | None = None
        self._last_error: str | None = None
        self._last_error_at: datetime | None = None
        self._last_published_at: datetime | None = None
        self._published = 0
        NATS_CONNECTED.labels(service).set(0)

    # --- public API ------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    def status(self) -> dict[str, Any]:
        """A snapshot for ``/readyz``: connection, backlog and the last error (never raises)."""
        return {
            "status": "ok" if self.connected and self._streams_ready else "degraded",
            "connected": self.connected,
            "streams_ready": self._streams_ready,
            "backlog": self._backlog,
            "published": self._published,
            "last_published_at": (
                format_utc(self._last_published_at) if self._last_published_at else None
            ),
            "last_error": self._last_error,
            "last_error_at": format_utc(self._last_error_at) if self._last_error_at else None,
        }

    def wake(self) -> None:
        """Ask the loop to relay now instead of at the next poll (e.g. right after a commit)."""
        self._wake.set()

    async def run(self) -> None:
        """Connect (retrying forever), ensure the streams, relay until cancelled."""
        # Report the backlog before the first connect attempt, which may take a while.
        with contextlib.suppress(Exception):
            await self.refresh_backlog()
        while not self._closed:
            try:
                await self._ensure_ready()
                published = await self.relay_once()
                await self._maybe_purge()
                self._backoff.reset()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._record_error(exc)
                # The backlog keeps growing during an outage: keep the gauge honest.
                with contextlib.suppress(Exception):
                    await self.refresh_backlog()
                await self._sleep(self._backoff.next_delay())
                continue
            if published < self.batch_size:
                await self._sleep(self.poll_interval)

    async def relay_once(self) -> int:
        """Publish one batch of due rows; returns how many were published and marked."""
        await self._ensure_ready()
        if await self._is_postgresql():
            published = await self._relay_locked()
        else:
            await self._hold_sqlite_lease()
            published = await self._relay_unlocked()
        await self.refresh_backlog()
        return published

    async def refresh_backlog(self) -> int:
        """Count unpublished rows and export the figure (gauge and status)."""
        query = sa.select(sa.func.count(), sa.func.min(_TABLE.c.created_at)).where(
            _TABLE.c.published_at.is_(None)
        )
        async with self.session_factory() as session:
            count, oldest = (await _execute(session, query)).one()
        self._backlog = int(count)
        OUTBOX_BACKLOG.labels(self.service).set(self._backlog)
        age = 0.0
        if oldest is not None:
            oldest_utc = oldest if oldest.tzinfo else oldest.replace(tzinfo=utcnow().tzinfo)
            age = max(0.0, (utcnow() - oldest_utc).total_seconds())
        OUTBOX_OLDEST_AGE.labels(self.service).set(age)
        return self._backlog

    async def purge_published(self, *, now: datetime | None = None) -> int:
        """Delete rows published before ``now - retention``; returns how many went."""
        cutoff = (now or utcnow()) - self.retention
        statement = sa.delete(_TABLE).where(
            _TABLE.c.published_at.is_not(None), _TABLE.c.published_at < cutoff
        )
        async with self.session_factory() as session, session.begin():
            result = await _execute(session, statement)
        deleted = int(getattr(result, "rowcount", 0) or 0)
        if deleted:
            OUTBOX_PURGED.labels(self.service).inc(deleted)
            logger.info("purged published outbox rows", extra={"rows": deleted})
        return deleted

    async def aclose(self) -> None:
        """Drain pending acks briefly and close the NATS connection."""
        self._closed = True
        self._wake.set()
        nc, self._nc, self._js = self._nc, None, None
        self._streams_ready = False
        NATS_CONNECTED.labels(self.service).set(0)
        if self._lease is not None:
            self._lease.close()  # releases the flock
            self._lease = None
        if nc is not None and not nc.is_closed:
            with contextlib.suppress(Exception):
                await nc.close()

    # --- connection ------------------------------------------------------------------------

    async def _ensure_ready(self) -> JetStreamContext:
        if self._closed:
            raise RelayUnavailable("the relay is closed")
        if self._nc is None or self._nc.is_closed:
            await self._connect()
        assert self._nc is not None
        assert self._js is not None
        if not self._nc.is_connected:
            raise RelayUnavailable("NATS is disconnected (reconnecting)")
        if not self._streams_ready:
            for name in self.streams:
                await ensure_stream(self._js, name, replicas=self.stream_replicas)
            self._streams_ready = True
        return self._js

    async def _connect(self) -> None:
        nc = NATS()

        async def on_error(exc: Exception) -> None:
            self._record_error(exc, log=False)

        async def on_disconnected() -> None:
            NATS_CONNECTED.labels(self.service).set(0)
            # Only a connection in use is news; a failed first attempt is reported by run().
            if self._nc is nc and not self._closed:
                logger.warning("NATS disconnected; outbox rows wait in the database")

        async def on_reconnected() -> None:
            NATS_CONNECTED.labels(self.service).set(1)
            logger.info("NATS reconnected; relaying the backlog")
            self._wake.set()

        try:
            # nats-py retries the first connect forever when reconnects are unlimited;
            # bounding it here lets the loop report the outage and back off itself.
            await asyncio.wait_for(
                nc.connect(
                    **self.nats_auth.options(self.nats_url),
                    name=f"momentum-{self.service}-outbox-relay",
                    connect_timeout=max(1, round(self.connect_timeout)),
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=1,
                    error_cb=on_error,
                    disconnected_cb=on_disconnected,
                    reconnected_cb=on_reconnected,
                ),
                timeout=self.connect_timeout * 2,
            )
        except (Exception, asyncio.CancelledError) as exc:
            with contextlib.suppress(Exception):
                await nc.close()
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise RelayUnavailable(f"cannot connect to NATS: {_describe(exc)}") from exc
        self._nc = nc
        self._js = nc.jetstream(timeout=self.publish_timeout, publish_async_max_pending=4000)
        self._streams_ready = False
        NATS_CONNECTED.labels(self.service).set(1)
        logger.info("outbox relay connected to NATS", extra={"nats_url": self.nats_url})

    async def _is_postgresql(self) -> bool:
        if self._dialect is None:
            async with self.session_factory() as session:
                bind = session.get_bind()
                self._dialect = bind.dialect.name
                self._database = bind.engine.url.database
        return self._dialect == "postgresql"

    async def _hold_sqlite_lease(self) -> None:
        """Be the one relay of this SQLite file, or stand by.

        SQLite cannot lock rows, so two relays would publish the same rows twice. An
        exclusive ``flock`` on a file beside the database elects one relay per host (the
        only place a SQLite file is shared); the others stand by and retry with backoff.
        The lock dies with its process, so a crashed relay never blocks the next one.
        """
        if self._lease is not None or not self._database or self._database == ":memory:":
            return
        if _flock is None:  # pragma: no cover - no flock on this platform: trust the operator
            return
        path = Path(f"{self._database}.relay.lock")
        handle = path.open("a+b")
        try:
            _flock(handle.fileno())
        except OSError:
            handle.close()
            raise RelayUnavailable(
                f"standing by: another relay publishes this SQLite outbox ({path})"
            ) from None
        self._lease = handle

    # --- claiming and publishing -----------------------------------------------------------

    def _due_query(self) -> sa.Select[tuple[str, str, bytes]]:
        return (
            sa.select(_TABLE.c.id, _TABLE.c.subject, _TABLE.c.payload)
            .where(_TABLE.c.published_at.is_(None), _TABLE.c.available_at <= utcnow())
            .order_by(_TABLE.c.created_at, _TABLE.c.id)
            .limit(self.batch_size)
        )

    async def _relay_locked(self) -> int:
        """PostgreSQL: claimed rows stay locked (others skip them) until marked and committed."""
        query = self._due_query().with_for_update(skip_locked=True)
        async with self.session_factory() as session, session.begin():
            rows = [_Claimed(*row) for row in (await _execute(session, query)).all()]
            if not rows:
                return 0
            published, failed = await self._publish(rows)
            await self._mark(session, published, failed)
        self._count_published(len(published))
        return len(published)

    async def _relay_unlocked(self) -> int:
        """SQLite: read, publish, then a short write to mark; no lock is held while publishing.

        A crash between publish and mark re-publishes the rows; JetStream drops them within
        its duplicate window (same ``Nats-Msg-Id``) and consumers dedupe by event id anyway.
        """
        async with self.session_factory() as session:
            rows = [_Claimed(*row) for row in (await _execute(session, self._due_query())).all()]
        if not rows:
            return 0
        published, failed = await self._publish(rows)
        async with self.session_factory() as session, session.begin():
            await self._mark(session, published, failed)
        self._count_published(len(published))
        return len(published)

    async def _publish(self, rows: list[_Claimed]) -> tuple[list[str], dict[str, str]]:
        """Send the whole batch with every ack in flight; the ids acked and those refused."""
        js = await self._ensure_ready()
        futures: list[asyncio.Future[Any]] = []
        try:
            for row in rows:
                headers = {"Nats-Msg-Id": row.id, "Content-Type": CLOUDEVENTS_CONTENT_TYPE}
                futures.append(
                    await js.publish_async(
                        row.subject, row.payload, wait_stall=self.publish_timeout, headers=headers
                    )
                )
        except BaseException:
            # Cancelling frees each future's slot in nats-py's in-flight window; a future
            # left behind would hold its slot until the client is closed.
            for future in futures:
                future.cancel()
            raise
        done, pending = await asyncio.wait(futures, timeout=self.publish_timeout)
        for future in pending:
            future.cancel()
        published: list[str] = []
        failed: dict[str, str] = {}
        link_error: BaseException | None = None
        for row, future in zip(rows, futures, strict=True):
            if future not in done or future.cancelled():
                link_error = link_error or TimeoutError("no ack before the publish timeout")
                continue
            exc = future.exception()
            if exc is None:
                published.append(row.id)
            elif isinstance(exc, NoStreamResponseError):
                # The stream vanished (e.g. a NATS restarted without its store): recreate it.
                self._streams_ready = False
                link_error = link_error or exc
            elif isinstance(exc, _ERRORS_CAUSED_BY_THE_LINK):
                link_error = link_error or exc
            else:
                # The server refused this message itself: retry it later, alone in its fault.
                failed[row.id] = _describe(exc)
                OUTBOX_FAILURES.labels(self.service, "rejected").inc()
        if link_error is not None:
            OUTBOX_FAILURES.labels(self.service, "unavailable").inc()
            if not published:
                raise RelayUnavailable(f"publish failed: {_describe(link_error)}")
            self._record_error(link_error)
        return published, failed

    async def _mark(
        self,
        session: SAAsyncSession | AsyncSession,
        published: list[str],
        failed: dict[str, str],
    ) -> None:
        now = utcnow()
        if published:
            await _execute(
                session,
                sa.update(_TABLE)
                .where(_TABLE.c.id.in_(published))
                .values(published_at=now, attempts=_TABLE.c.attempts + 1, last_error=None),
            )
        for event_id, error in failed.items():
            await _execute(
                session,
                sa.update(_TABLE)
                .where(_TABLE.c.id == event_id)
                .values(
                    attempts=_TABLE.c.attempts + 1,
                    last_error=error[:500],
                    available_at=now + timedelta(seconds=self.row_retry_delay),
                ),
            )

    def _count_published(self, count: int) -> None:
        if count:
            self._published += count
            self._last_published_at = utcnow()
            OUTBOX_PUBLISHED.labels(self.service).inc(count)

    # --- housekeeping ----------------------------------------------------------------------

    async def _maybe_purge(self) -> None:
        if time.monotonic() - self._last_purge < self.purge_interval:
            return
        self._last_purge = time.monotonic()
        await self.purge_published()

    async def _sleep(self, seconds: float) -> None:
        # A wake() that arrived while relaying ends this sleep at once: cleared only after.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        self._wake.clear()

    def _record_error(self, exc: BaseException, *, log: bool = True) -> None:
        self._last_error = _describe(exc)
        self._last_error_at = utcnow()
        if log:
            logger.warning("outbox relay waiting", extra={"error": self._last_error})


async def _execute(session: SAAsyncSession | AsyncSession, statement: sa.Executable) -> Any:
    # Core statements on the session's connection: the same transaction, and none of
    # SQLModel's deprecation of ``Session.execute``.
    connection = await session.connection()
    return await connection.execute(statement)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# --- standalone entry ------------------------------------------------------------------------


async def run_standalone(
    *,
    service: str,
    database_url: str,
    nats_url: str,
    streams: Sequence[str] | None = None,
    batch_size: int = 500,
    poll_interval: float = 0.25,
    retention: timedelta = timedelta(days=7),
    connect_timeout: float = 2.0,
    stream_replicas: int = 1,
    nats_auth: NatsAuth | None = None,
) -> None:
    """Run one relay outside any web process until SIGINT or SIGTERM.

    ``stream_replicas`` must match the in-process relays': each relay creates or updates
    the streams at start-up, so a differing value would rewrite the stream's replication.
    """
    from momentum_shared.db import create_engine, create_session_factory

    engine = create_engine(database_url)
    relay = OutboxRelay(
        create_session_factory(engine),
        nats_url=nats_url,
        service=service,
        streams=list(streams) if streams else SERVICE_STREAMS.get(service, []),
        batch_size=batch_size,
        poll_interval=poll_interval,
        retention=retention,
        connect_timeout=connect_timeout,
        stream_replicas=stream_replicas,
        nats_auth=nats_auth,
    )
    task = asyncio.create_task(relay.run())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, task.cancel)
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        task.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(sig)
        await relay.aclose()
        await engine.dispose()


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m momentum_shared.outbox``: the relay as its own process."""
    parser = argparse.ArgumentParser(description="Relay a service's outbox to NATS JetStream.")
    parser.add_argument("--service", required=True, help="service name (auth, tasks)")
    parser.add_argument("--database-url", required=True, help="SQLAlchemy async URL")
    parser.add_argument("--nats-url", default="nats://127.0.0.1:4222")
    parser.add_argument("--stream", action="append", dest="streams", help="stream to ensure")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--poll-interval", type=float, default=0.25)
    parser.add_argument("--retention-hours", type=float, default=7 * 24)
    parser.add_argument("--stream-replicas", type=int, default=1, help="JetStream replicas")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    # The service's own NATS credentials, from its variables (MOMENTUM_<SERVICE>_NATS_…).
    prefix = f"MOMENTUM_{args.service.upper()}_NATS_"
    ca_file = os.environ.get(prefix + "TLS_CA_FILE")
    nats_auth = NatsAuth(
        os.environ.get(prefix + "USER"),
        os.environ.get(prefix + "PASSWORD"),
        Path(ca_file) if ca_file else None,
    )
    asyncio.run(
        run_standalone(
            service=args.service,
            database_url=args.database_url,
            nats_url=args.nats_url,
            streams=args.streams,
            batch_size=args.batch_size,
            poll_interval=args.poll_interval,
            retention=timedelta(hours=args.retention_hours),
            stream_replicas=args.stream_replicas,
            nats_auth=nats_auth,
        )
    )


if __name__ == "__main__":
    main()
