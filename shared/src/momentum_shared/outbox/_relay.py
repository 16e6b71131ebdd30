"""The relay: publishes a service's unpublished outbox rows to JetStream and marks them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import asyncpg
import sqlalchemy as sa
from nats.aio.client import Client as NATS
from nats.errors import ConnectionClosedError, NoServersError, OutboundBufferLimitError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.errors import NoStreamResponseError
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import Span
from sqlalchemy.ext.asyncio import AsyncEngine

from momentum_shared.db import execute
from momentum_shared.events import CLOUDEVENTS_CONTENT_TYPE, format_utc, utcnow
from momentum_shared.lifespan import worker_status
from momentum_shared.metrics import NATS_CONNECTED
from momentum_shared.nats import (
    STREAM_MAX_AGE_SECONDS,
    STREAM_MAX_BYTES,
    NatsAuth,
    connect,
    ensure_stream,
    jetstream,
)
from momentum_shared.outbox._claims import (
    Claimed,
    Claims,
    Outcome,
    RelayUnavailable,
    Session,
    SessionFactory,
    claims_for,
    due_query,
)
from momentum_shared.outbox._metrics import (
    OUTBOX_BACKLOG,
    OUTBOX_FAILURES,
    OUTBOX_OLDEST_AGE,
    OUTBOX_PUBLISHED,
    OUTBOX_PURGED,
    OUTBOX_REFUSING,
)
from momentum_shared.outbox._table import notify_channel, register_waker
from momentum_shared.outbox._tracing import end_publish_span, start_publish_span
from momentum_shared.pruning import Pruner, PruneTarget
from momentum_shared.tracing import tracing_enabled

logger = logging.getLogger("momentum.outbox")

_ERRORS_CAUSED_BY_THE_LINK = (
    ConnectionClosedError,
    NoServersError,
    OutboundBufferLimitError,
    NatsTimeoutError,
    TimeoutError,
    OSError,
)

DEFAULT_POLL_INTERVAL_SECONDS = 0.2
DEFAULT_RETENTION_SECONDS = 7 * 24 * 3600.0


def published_rows(table: sa.Table, service: str, retention_seconds: float) -> PruneTarget:
    """The prune target of an outbox: rows published more than ``retention_seconds`` ago
    (found by ``ix_outbox_published_at``; unpublished rows are never pruned)."""
    retention = timedelta(seconds=retention_seconds)
    purged = OUTBOX_PURGED.labels(service)
    return PruneTarget(
        table,
        lambda now: sa.and_(
            table.c.published_at.is_not(None), table.c.published_at < now - retention
        ),
        counted=purged.inc,
    )


class RelayConfigurable(Protocol):
    """The settings a relay reads (``OutboxSettings`` in ``momentum_shared.settings``)."""

    @property
    def nats_url(self) -> str: ...
    @property
    def nats_auth(self) -> NatsAuth: ...
    @property
    def nats_connect_timeout_seconds(self) -> float: ...
    @property
    def nats_stream_replicas(self) -> int: ...
    @property
    def outbox_batch_size(self) -> int: ...
    @property
    def outbox_poll_interval_seconds(self) -> float: ...
    @property
    def outbox_retention_seconds(self) -> float: ...
    @property
    def nats_stream_max_bytes(self) -> int: ...
    @property
    def nats_stream_max_age_seconds(self) -> int: ...


@dataclass(frozen=True, slots=True)
class RelaySettings:
    """How a relay runs: where NATS is, how big and how often, how long rows are kept."""

    nats_url: str = "nats://127.0.0.1:4222"
    nats_auth: NatsAuth = field(default_factory=NatsAuth)
    batch_size: int = 500
    poll_interval_seconds: float = DEFAULT_POLL_INTERVAL_SECONDS
    retention_seconds: float = DEFAULT_RETENTION_SECONDS
    publish_timeout_seconds: float = 5.0
    connect_timeout_seconds: float = 2.0
    max_backoff_seconds: float = 10.0
    row_retry_delay_seconds: float = 5.0
    stream_replicas: int = 1
    # The limits of a stream this relay creates (never applied to an existing one).
    stream_max_bytes: int = STREAM_MAX_BYTES
    stream_max_age_seconds: int = STREAM_MAX_AGE_SECONDS

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")

    @classmethod
    def of(cls, settings: RelayConfigurable) -> RelaySettings:
        """The relay part of a service's settings (every service maps them the same way)."""
        return cls(
            nats_url=settings.nats_url,
            nats_auth=settings.nats_auth,
            batch_size=settings.outbox_batch_size,
            poll_interval_seconds=settings.outbox_poll_interval_seconds,
            retention_seconds=settings.outbox_retention_seconds,
            connect_timeout_seconds=settings.nats_connect_timeout_seconds,
            stream_replicas=settings.nats_stream_replicas,
            stream_max_bytes=settings.nats_stream_max_bytes,
            stream_max_age_seconds=settings.nats_stream_max_age_seconds,
        )


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
    * With tracing on, publishes a row that kept its writer's trace context in a PRODUCER
      span, child of that context, whose own context the message carries (``_tracing``).
    * Marks rows ``published_at`` rather than following an id cursor: ids and sequences
      can commit out of order, a cursor would skip rows.
    * Backs off while NATS is down without touching the rows: the API only inserts.
    * Leaves published rows to the service's prune job (``published_rows``), which deletes
      those published longer than ``retention`` ago, one replica at a time.
    """

    def __init__(
        self,
        session_factory: SessionFactory,
        table: sa.Table,
        *,
        service: str,
        streams: Sequence[str],
        settings: RelaySettings | None = None,
    ) -> None:
        self.session_factory = session_factory
        self.table = table
        self.service = service
        self.streams = list(streams)
        self.settings = settings = settings or RelaySettings()
        self.retention = timedelta(seconds=settings.retention_seconds)
        self._backoff = Backoff(maximum=settings.max_backoff_seconds)
        self._nc: NATS | None = None
        self._js: JetStreamContext | None = None
        self._streams_ready = False
        self._wake = asyncio.Event()
        self._closed = False
        self._claims: Claims | None = None
        # What status() reports; updated by the loop, read synchronously by /readyz.
        self._backlog: int | None = None
        self._last_error: str | None = None
        self._last_error_at: datetime | None = None
        self._last_published_at: datetime | None = None
        # While JetStream refuses every event of the relay's batches (a stream or store
        # that is full and set to refuse, a limit an operator lowered): what it answers.
        self._refused: str | None = None
        self._refused_since: datetime | None = None
        self._published = 0
        self._listening = False
        bind = session_factory.kw.get("bind")
        self._unregister: Callable[[], None] = (
            register_waker(bind.sync_engine, table, self)
            if isinstance(bind, AsyncEngine)
            else lambda: None
        )
        NATS_CONNECTED.labels(service).set(0)

    # --- public API ------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    def status(self) -> dict[str, Any]:
        """A snapshot for ``/readyz``: connection, backlog and the last error (never raises)."""
        return worker_status(
            self.connected and self._streams_ready and self._refused is None,
            connected=self.connected,
            streams_ready=self._streams_ready,
            listening=self._listening,
            backlog=self._backlog,
            published=self._published,
            last_published_at=(
                format_utc(self._last_published_at) if self._last_published_at else None
            ),
            last_error=self._last_error,
            last_error_at=format_utc(self._last_error_at) if self._last_error_at else None,
            publish_refused=self._refused,
            refused_since=format_utc(self._refused_since) if self._refused_since else None,
        )

    @property
    def listening(self) -> bool:
        """Whether a PostgreSQL ``LISTEN`` connection is up (always false on SQLite)."""
        return self._listening

    def wake(self) -> None:
        """Ask the loop to relay now instead of at the next poll (e.g. right after a commit)."""
        self._wake.set()

    async def run(self) -> None:
        """Connect (retrying forever), ensure the streams, relay until cancelled.

        On PostgreSQL a dedicated connection also ``LISTEN``s for the outbox's channel, so a
        commit on any replica wakes this relay; the poll is the safety net meanwhile.
        """
        listener: asyncio.Task[None] | None = None
        with contextlib.suppress(Exception):
            url = _postgres_url(self.session_factory)
            if url is not None:
                listener = asyncio.create_task(self._listen(url), name="outbox-listener")
        try:
            await self._relay_forever()
        finally:
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await listener

    async def _relay_forever(self) -> None:
        # The relay's own statements (claims, marks, the backlog count every poll) make no
        # spans: with tracing on they would be a root trace of a few SELECTs five times a
        # second per replica. Each event's publish span is made all the same, in its
        # writer's trace (_tracing.py), because the SDK's tracer ignores the suppression.
        with suppress_instrumentation():
            await self._relay_until_closed()

    async def _relay_until_closed(self) -> None:
        # Report the backlog before the first connect attempt, which may take a while.
        with contextlib.suppress(Exception):
            await self.refresh_backlog()
        while not self._closed:
            try:
                await self._ensure_ready()
                published = await self.relay_once()
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
            if published < self.settings.batch_size:
                await self._sleep(self.settings.poll_interval_seconds)

    async def relay_once(self) -> int:
        """Publish one batch of due rows; returns how many were published and marked."""
        await self._ensure_ready()
        if self._claims is None:
            self._claims = await claims_for(self.session_factory)
        published = await self._claims.relay(
            due_query(self.table, self.settings.batch_size), self._publish, self._mark
        )
        self._count_published(published)
        await self.refresh_backlog()
        return published

    async def refresh_backlog(self) -> int:
        """Count unpublished rows and export the figure (gauge and status)."""
        table = self.table
        query = sa.select(sa.func.count(), sa.func.min(table.c.created_at)).where(
            table.c.published_at.is_(None)
        )
        async with self.session_factory() as session:
            count, oldest = (await execute(session, query)).one()
        self._backlog = int(count)
        OUTBOX_BACKLOG.labels(self.service).set(self._backlog)
        age = 0.0
        if oldest is not None:  # aware: the column is a UtcDateTime
            age = max(0.0, (utcnow() - oldest).total_seconds())
        OUTBOX_OLDEST_AGE.labels(self.service).set(age)
        return self._backlog

    async def purge_published(self, *, now: datetime | None = None) -> int:
        """Delete rows published before ``now - retention`` now (the prune job's outbox
        part, chunked and locked the same way); returns how many went."""
        target = published_rows(self.table, self.service, self.settings.retention_seconds)
        result = await Pruner(
            self.session_factory, [target], service=self.service, job="outbox-prune"
        ).prune(now=now)
        return result.total

    async def aclose(self) -> None:
        """Drain pending acks briefly and close the NATS connection."""
        self._closed = True
        self._unregister()
        self._wake.set()
        nc, self._nc, self._js = self._nc, None, None
        self._streams_ready = False
        NATS_CONNECTED.labels(self.service).set(0)
        if self._claims is not None:
            self._claims.close()
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
                await ensure_stream(
                    self._js,
                    name,
                    replicas=self.settings.stream_replicas,
                    max_bytes=self.settings.stream_max_bytes,
                    max_age_seconds=self.settings.stream_max_age_seconds,
                )
            self._streams_ready = True
        return self._js

    async def _connect(self) -> None:
        nc = NATS()
        settings = self.settings

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
                connect(
                    settings.nats_url,
                    name=f"momentum-{self.service}-outbox-relay",
                    connect_timeout=max(1, round(settings.connect_timeout_seconds)),
                    auth=settings.nats_auth,
                    client=nc,
                    on_error=on_error,
                    on_disconnected=on_disconnected,
                    on_reconnected=on_reconnected,
                ),
                timeout=settings.connect_timeout_seconds * 2,
            )
        except (Exception, asyncio.CancelledError) as exc:
            with contextlib.suppress(Exception):
                await nc.close()
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise RelayUnavailable(f"cannot connect to NATS: {_describe(exc)}") from exc
        self._nc = nc
        self._js = jetstream(
            nc, timeout=settings.publish_timeout_seconds, publish_async_max_pending=4000
        )
        self._streams_ready = False
        NATS_CONNECTED.labels(self.service).set(1)
        logger.info("outbox relay connected to NATS", extra={"nats_url": settings.nats_url})

    # --- the PostgreSQL wake-up channel -----------------------------------------------------

    async def _listen(self, url: sa.URL) -> None:
        """Keep one connection listening on the outbox channel; reconnect when it drops."""
        channel = notify_channel(self.table)
        backoff = Backoff(maximum=self.settings.max_backoff_seconds)
        options = url.translate_connect_args(username="user")
        while not self._closed:
            lost = asyncio.Event()
            try:
                connection = await asyncpg.connect(
                    **options, timeout=self.settings.connect_timeout_seconds
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._record_error(exc, log=False)
                await asyncio.sleep(backoff.next_delay())
                continue
            try:
                connection.add_termination_listener(lambda _connection, lost=lost: lost.set())
                await connection.add_listener(channel, lambda *_args: self._wake.set())
                self._listening = True
                backoff.reset()
                # Rows committed while nobody listened: relay them now, not at the next poll.
                self._wake.set()
                logger.info("outbox relay listening", extra={"channel": channel})
                await lost.wait()
                logger.warning("outbox listener lost; polling until it is back")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._record_error(exc, log=False)
                await asyncio.sleep(backoff.next_delay())
            finally:
                self._listening = False
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(connection.close(), timeout=1.0)
                if not connection.is_closed():
                    connection.terminate()

    # --- claiming and publishing -----------------------------------------------------------

    async def _publish(self, rows: list[Claimed]) -> Outcome:
        """Send the whole batch with every ack in flight; the ids acked and those refused."""
        js = await self._ensure_ready()
        futures: list[asyncio.Future[Any]] = []
        # The PRODUCER span of each row that carries a trace context, by position in rows.
        spans: dict[int, Span] = {}
        traced = tracing_enabled()
        try:
            for index, row in enumerate(rows):
                headers = {"Nats-Msg-Id": row.id, "Content-Type": CLOUDEVENTS_CONTENT_TYPE}
                payload = row.payload
                if traced and row.trace_context is not None:
                    spans[index], payload = start_publish_span(row, headers)
                futures.append(
                    await js.publish_async(
                        row.subject,
                        payload,
                        wait_stall=self.settings.publish_timeout_seconds,
                        headers=headers,
                    )
                )
        except BaseException as interrupted:
            # Cancelling frees each future's slot in nats-py's in-flight window; a future
            # left behind would hold its slot until the client is closed.
            for future in futures:
                future.cancel()
            for span in spans.values():
                end_publish_span(span, interrupted)
            raise
        done, pending = await asyncio.wait(futures, timeout=self.settings.publish_timeout_seconds)
        for future in pending:
            future.cancel()
        published: list[str] = []
        failed: dict[str, str] = {}
        link_error: BaseException | None = None
        for index, (row, future) in enumerate(zip(rows, futures, strict=True)):
            if spans:
                _end_span(spans.get(index), future, done)
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
        self._note_refusals(published, failed)
        if link_error is not None:
            OUTBOX_FAILURES.labels(self.service, "unavailable").inc()
            if not published:
                raise RelayUnavailable(f"publish failed: {_describe(link_error)}")
            self._record_error(link_error)
        return published, failed

    async def _mark(self, session: Session, outcome: Outcome) -> None:
        published, failed = outcome
        table = self.table
        now = utcnow()
        if published:
            await execute(
                session,
                sa.update(table)
                .where(table.c.id.in_(published))
                .values(published_at=now, attempts=table.c.attempts + 1, last_error=None),
            )
        retry_at = now + timedelta(seconds=self.settings.row_retry_delay_seconds)
        for event_id, error in failed.items():
            await execute(
                session,
                sa.update(table)
                .where(table.c.id == event_id)
                .values(
                    attempts=table.c.attempts + 1, last_error=error[:500], available_at=retry_at
                ),
            )

    def _note_refusals(self, published: list[str], failed: dict[str, str]) -> None:
        """An outage while JetStream refuses every event it is sent; over at the next ack."""
        if published:
            if self._refused is not None:
                logger.info("JetStream accepts events again", extra={"service": self.service})
            self._refused = self._refused_since = None
            OUTBOX_REFUSING.labels(self.service).set(0)
        elif failed:
            reason = next(iter(failed.values()))
            if self._refused is None:
                self._refused_since = utcnow()
                logger.error(
                    "JetStream refuses every event; they wait in the outbox",
                    extra={"service": self.service, "error": reason},
                )
            self._refused = reason
            OUTBOX_REFUSING.labels(self.service).set(1)

    def _count_published(self, count: int) -> None:
        if count:
            self._published += count
            self._last_published_at = utcnow()
            OUTBOX_PUBLISHED.labels(self.service).inc(count)

    # --- housekeeping ----------------------------------------------------------------------

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


def _end_span(span: Span | None, future: asyncio.Future[Any], done: set[Any]) -> None:
    if span is None:
        return
    if future not in done or future.cancelled():
        end_publish_span(span, "no ack before the publish timeout")
    else:
        end_publish_span(span, future.exception())


def _postgres_url(session_factory: SessionFactory) -> sa.URL | None:
    """The URL of the PostgreSQL database behind ``session_factory``; None for any other."""
    bind = session_factory.kw.get("bind")
    if bind is None or bind.dialect.name != "postgresql":
        return None
    url: sa.URL = bind.url
    return url


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
