"""The JetStream side of analytics: durable pull consumers, batches, dead letters, replays."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import nats.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from prometheus_client import Counter, Gauge
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from momentum_analytics.events import Fact, PoisonEvent, decode
from momentum_analytics.repository import AnalyticsRepository
from momentum_analytics.service import apply_facts
from momentum_analytics.settings import AnalyticsSettings
from momentum_shared.db import UnitOfWork
from momentum_shared.events import AUTH_STREAM, STREAM_SUBJECTS, TASK_STREAM, utcnow
from momentum_shared.metrics import NATS_CONNECTED, REGISTRY
from momentum_shared.nats import connect

logger = logging.getLogger("momentum.analytics.consumer")

Clock = Callable[[], datetime]
SessionFactory = async_sessionmaker[AsyncSession]

CONSUMER_PENDING = Gauge(
    "momentum_analytics_consumer_pending",
    "Messages of the stream not yet delivered to the analytics consumer (its lag)",
    ["stream"],
    registry=REGISTRY,
)
CONSUMER_ACK_PENDING = Gauge(
    "momentum_analytics_consumer_ack_pending",
    "Messages delivered to the analytics consumer and not yet acknowledged",
    ["stream"],
    registry=REGISTRY,
)
EVENTS = Counter(
    "momentum_analytics_events_total",
    "Consumed messages by outcome (applied, duplicate, ignored, retried, dead_lettered)",
    ["stream", "outcome"],
    registry=REGISTRY,
)
DEAD_LETTERS = Counter(
    "momentum_analytics_dead_letters_total",
    "Messages moved to the dead-letter table and terminated",
    ["stream"],
    registry=REGISTRY,
)
DEAD_LETTERS_STORED = Gauge(
    "momentum_analytics_dead_letters_stored",
    "Rows in the dead-letter table, as last seen by this process",
    registry=REGISTRY,
)

# Errors that say the database is unreachable, not that the message is bad: never dead-letter.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    PoolTimeoutError,
    OSError,
)


def _event_id(payload: bytes) -> str | None:
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        value = json.loads(payload).get("id")
        return value if isinstance(value, str) else None
    return None


async def _settle(action: Awaitable[None]) -> None:
    """Ack/nak/term are fire-and-forget; a lost one means a redelivery the inbox absorbs."""
    try:
        await action
    except Exception as exc:
        logger.warning("could not settle a message", extra={"error": repr(exc)})


@dataclass
class StreamState:
    state: str = "pending"
    pending: int | None = None
    ack_pending: int | None = None
    last_error: str | None = None


class EventConsumer:
    """Applies AUTH_EVENTS and TASK_EVENTS to the projections, once each in effect.

    Every replica binds the same durable consumer, so JetStream spreads messages across
    them; the inbox (in the batch's transaction) absorbs redeliveries and races.
    """

    def __init__(
        self,
        session_factory: SessionFactory,
        settings: AnalyticsSettings,
        *,
        clock: Clock = utcnow,
        streams: Sequence[str] = (AUTH_STREAM, TASK_STREAM),
    ) -> None:
        self.session_factory = session_factory
        self.settings = settings
        self.clock = clock
        self.streams = tuple(streams)
        self._nc: NATS | None = None
        self._connecting = False
        self._last_error: str | None = None
        self._streams = {name: StreamState() for name in self.streams}

    # -- state -------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """For ``/readyz`` (informational: NATS down never makes analytics unready)."""
        connected = self._nc is not None and self._nc.is_connected
        return {
            "status": "connected" if connected else "disconnected",
            "durable": self.settings.consumer_durable,
            "streams": {
                name: {
                    "state": state.state,
                    "pending": state.pending,
                    "ack_pending": state.ack_pending,
                    **({"last_error": state.last_error} if state.last_error else {}),
                }
                for name, state in self._streams.items()
            },
            **({"last_error": self._last_error} if self._last_error and not connected else {}),
        }

    def consumer_config(self, stream: str) -> ConsumerConfig:
        """The durable's configuration, applied on every start (create or update)."""
        durable = self.settings.consumer_durable
        return ConsumerConfig(
            name=durable,
            durable_name=durable,
            description="Momentum analytics projections",
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.settings.consumer_ack_wait_seconds,
            # Unlimited on the server: the consumer bounds poison itself and must not lose
            # messages that failed only because the database was down.
            max_deliver=-1,
            max_ack_pending=self.settings.consumer_max_ack_pending,
            filter_subject=STREAM_SUBJECTS[stream][0],
        )

    # -- the live loop -----------------------------------------------------------------------

    async def run(self) -> None:
        """Consume forever (until cancelled), surviving NATS outages and missing streams."""
        while True:
            # The client exists before it connects, so a cancelled connect closes its socket.
            nc = NATS()
            try:
                await self._connect(nc)
                self._nc = nc
                NATS_CONNECTED.labels("analytics").set(1)
                js = nc.jetstream()
                await asyncio.gather(*(self._consume(js, stream) for stream in self.streams))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._last_error = f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(self.settings.consumer_retry_interval_seconds)
            finally:
                self._nc = None
                NATS_CONNECTED.labels("analytics").set(0)
                with contextlib.suppress(Exception):
                    await nc.close()

    async def _connect(self, nc: NATS) -> None:
        async def error(exc: Exception) -> None:
            self._last_error = f"{type(exc).__name__}: {exc}"

        await nc.connect(
            servers=[self.settings.nats_url],
            name="momentum-analytics",
            connect_timeout=max(1, round(self.settings.nats_connect_timeout)),
            max_reconnect_attempts=-1,  # reconnect forever: an outage heals by itself
            reconnect_time_wait=1,
            allow_reconnect=True,
            error_cb=error,
            disconnected_cb=self._disconnected,
            reconnected_cb=self._reconnected,
        )

    async def _disconnected(self) -> None:
        NATS_CONNECTED.labels("analytics").set(0)

    async def _reconnected(self) -> None:
        NATS_CONNECTED.labels("analytics").set(1)

    async def bind(self, js: JetStreamContext, stream: str) -> JetStreamContext.PullSubscription:
        """Create or update the durable (``pull_subscribe`` would ignore a new config), bind."""
        await js.add_consumer(stream, self.consumer_config(stream))
        return await js.pull_subscribe_bind(
            durable=self.settings.consumer_durable,
            stream=stream,
        )

    async def _consume(self, js: JetStreamContext, stream: str) -> None:
        state = self._streams[stream]
        retry = self.settings.consumer_retry_interval_seconds
        while True:
            try:
                subscription = await self.bind(js, stream)
            except asyncio.CancelledError:
                raise
            except NotFoundError:
                # Producers create their streams; analytics may simply be first.
                state.state, state.last_error = "waiting for stream", None
                await asyncio.sleep(retry)
                continue
            except Exception as exc:
                state.state, state.last_error = "retrying", f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(retry)
                continue
            state.state, state.last_error = "consuming", None
            try:
                await self._pump(stream, subscription, state)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning(
                    "consumer interrupted; binding again",
                    extra={"stream": stream, "error": f"{type(exc).__name__}: {exc}"},
                )
                state.state, state.last_error = "retrying", f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(retry)
            finally:
                with contextlib.suppress(Exception):
                    await subscription.unsubscribe()

    async def _pump(
        self, stream: str, subscription: JetStreamContext.PullSubscription, state: StreamState
    ) -> None:
        last_lag = 0.0
        while True:
            try:
                messages = await subscription.fetch(
                    self.settings.consumer_batch_size,
                    timeout=self.settings.consumer_fetch_timeout_seconds,
                )
            except nats.errors.TimeoutError:
                messages = []  # nothing to do: normal when the stream is idle
            if messages:
                await self.handle(stream, messages)
            if time.monotonic() - last_lag >= self.settings.consumer_lag_interval_seconds:
                info = await subscription.consumer_info()
                state.pending, state.ack_pending = info.num_pending, info.num_ack_pending
                CONSUMER_PENDING.labels(stream).set(info.num_pending or 0)
                CONSUMER_ACK_PENDING.labels(stream).set(info.num_ack_pending or 0)
                last_lag = time.monotonic()

    # -- one batch -----------------------------------------------------------------------------

    async def handle(self, stream: str, messages: Sequence[Msg]) -> None:
        """Apply a fetched batch in one transaction, then ack; fall back to one by one."""
        batch: list[tuple[Msg, Fact]] = []
        for message in messages:
            try:
                fact = decode(message.data)
            except PoisonEvent as exc:
                await self._failed(stream, message, exc)
                continue
            if fact is None:
                EVENTS.labels(stream, "ignored").inc()
                await _settle(message.ack())
                continue
            batch.append((message, fact))
        if not batch:
            return
        try:
            async with UnitOfWork(self.session_factory) as uow:
                result = await apply_facts(
                    AnalyticsRepository(uow.session), [fact for _, fact in batch], now=self.clock()
                )
        except Exception as exc:
            # One bad message must not hold back the rest of its batch.
            logger.warning(
                "batch failed; applying its messages one by one",
                extra={"stream": stream, "error": f"{type(exc).__name__}: {exc}"},
            )
            for message, fact in batch:
                await self._apply_one(stream, message, fact)
            return
        EVENTS.labels(stream, "applied").inc(result.applied)
        EVENTS.labels(stream, "duplicate").inc(result.duplicates)
        for message, _ in batch:
            await _settle(message.ack())

    async def _apply_one(self, stream: str, message: Msg, fact: Fact) -> None:
        try:
            async with UnitOfWork(self.session_factory) as uow:
                result = await apply_facts(
                    AnalyticsRepository(uow.session), [fact], now=self.clock()
                )
        except Exception as exc:
            await self._failed(stream, message, exc)
            return
        EVENTS.labels(stream, "applied").inc(result.applied)
        EVENTS.labels(stream, "duplicate").inc(result.duplicates)
        await _settle(message.ack())

    def _redelivery_delay(self, deliveries: int) -> float:
        return float(
            min(self.settings.consumer_nak_delay_seconds * 2 ** max(deliveries - 1, 0), 60.0)
        )

    async def _failed(self, stream: str, message: Msg, error: BaseException) -> None:
        """Redeliver later; after the bound, park the message as a dead letter and terminate it."""
        deliveries = message.metadata.num_delivered
        transient = isinstance(error, TRANSIENT_ERRORS)
        if transient or deliveries < self.settings.dead_letter_after_deliveries:
            logger.warning(
                "message failed; it will be redelivered",
                extra={"stream": stream, "deliveries": deliveries, "error": repr(error)[:300]},
            )
            EVENTS.labels(stream, "retried").inc()
            await _settle(message.nak(delay=self._redelivery_delay(deliveries)))
            return
        try:
            async with UnitOfWork(self.session_factory) as uow:
                repo = AnalyticsRepository(uow.session)
                added = await repo.add_dead_letter(
                    stream=stream,
                    stream_sequence=message.metadata.sequence.stream,
                    subject=message.subject,
                    event_id=_event_id(message.data),
                    deliveries=deliveries,
                    payload=message.data,
                    error=f"{type(error).__name__}: {error}",
                    at=self.clock(),
                )
                stored = await repo.count_dead_letters()
        except Exception as exc:
            # Keep it in the stream rather than lose it; it is tried again later.
            logger.error("could not store a dead letter", extra={"error": repr(exc)})
            await _settle(message.nak(delay=self._redelivery_delay(deliveries)))
            return
        if added:
            DEAD_LETTERS.labels(stream).inc()
            logger.error(
                "message dead-lettered",
                extra={
                    "stream": stream,
                    "sequence": message.metadata.sequence.stream,
                    "error": repr(error)[:300],
                },
            )
        DEAD_LETTERS_STORED.set(stored)
        EVENTS.labels(stream, "dead_lettered").inc()
        await _settle(message.term())

    # -- replay ------------------------------------------------------------------------------------

    async def replay(self, js: JetStreamContext, stream: str) -> int:
        """Apply a whole stream from its first message through ``handle`` (for a rebuild).

        An ephemeral consumer delivers everything; the loop ends when nothing is pending
        or awaiting its ack. Returns how many distinct messages were delivered.
        """
        name = f"{self.settings.consumer_durable}-replay-{uuid.uuid4().hex[:12]}"
        try:
            await js.add_consumer(
                stream,
                ConsumerConfig(
                    name=name,
                    deliver_policy=DeliverPolicy.ALL,
                    ack_policy=AckPolicy.EXPLICIT,
                    ack_wait=self.settings.consumer_ack_wait_seconds,
                    max_ack_pending=self.settings.consumer_max_ack_pending,
                    filter_subject=STREAM_SUBJECTS[stream][0],
                    inactive_threshold=300.0,
                ),
            )
        except NotFoundError:
            return 0  # no stream, nothing to replay
        delivered: set[int] = set()
        subscription = await js.pull_subscribe_bind(consumer=name, stream=stream)
        try:
            while True:
                try:
                    messages = await subscription.fetch(
                        self.settings.consumer_batch_size,
                        timeout=self.settings.consumer_fetch_timeout_seconds,
                    )
                except nats.errors.TimeoutError:
                    messages = []
                if messages:
                    delivered.update(message.metadata.sequence.stream for message in messages)
                    await self.handle(stream, messages)
                    continue
                info = await js.consumer_info(stream, name)
                if not info.num_pending and not info.num_ack_pending:
                    return len(delivered)
        finally:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
            with contextlib.suppress(Exception):
                await js.delete_consumer(stream, name)


@dataclass(frozen=True, slots=True)
class RetryOutcome:
    dead_letter_id: int
    applied: bool
    error: str | None = None


async def retry_dead_letters(
    session_factory: SessionFactory, *, now: Clock = utcnow, ids: Sequence[int] | None = None
) -> list[RetryOutcome]:
    """Re-apply dead letters through the same code path; each one that succeeds is removed."""
    async with UnitOfWork(session_factory) as uow:
        letters = await AnalyticsRepository(uow.session).dead_letters(ids)
    outcomes: list[RetryOutcome] = []
    for letter in letters:
        try:
            async with UnitOfWork(session_factory) as uow:
                repo = AnalyticsRepository(uow.session)
                fact = decode(letter.payload)
                if fact is not None:
                    await apply_facts(repo, [fact], now=now())
                await repo.delete_dead_letter(letter.id)
        except Exception as exc:
            outcomes.append(RetryOutcome(letter.id, False, f"{type(exc).__name__}: {exc}"))
            continue
        outcomes.append(RetryOutcome(letter.id, True))
    async with UnitOfWork(session_factory) as uow:
        DEAD_LETTERS_STORED.set(await AnalyticsRepository(uow.session).count_dead_letters())
    return outcomes


async def rebuild(
    session_factory: SessionFactory, settings: AnalyticsSettings, *, clock: Clock = utcnow
) -> dict[str, int]:
    """Empty the projections and the inbox, then replay both streams from their start."""
    async with UnitOfWork(session_factory) as uow:
        await AnalyticsRepository(uow.session).clear_projections()
    consumer = EventConsumer(session_factory, settings, clock=clock)
    nc = await connect(
        settings.nats_url,
        name="momentum-analytics-rebuild",
        connect_timeout=settings.nats_connect_timeout,
        max_reconnect_attempts=3,
    )
    try:
        js = nc.jetstream()
        return {stream: await consumer.replay(js, stream) for stream in consumer.streams}
    finally:
        await nc.close()
