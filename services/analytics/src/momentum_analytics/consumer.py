"""The JetStream side of analytics: what a batch means, dead letters, replays, retries."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from opentelemetry import trace
from opentelemetry.semconv._incubating.attributes.messaging_attributes import (
    MESSAGING_BATCH_MESSAGE_COUNT,
    MESSAGING_CONSUMER_GROUP_NAME,
    MESSAGING_DESTINATION_NAME,
    MESSAGING_MESSAGE_ID,
    MESSAGING_OPERATION_NAME,
    MESSAGING_OPERATION_TYPE,
    MESSAGING_SYSTEM,
    MessagingOperationTypeValues,
)
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode
from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from momentum_analytics.decoding import Fact, decode
from momentum_analytics.repository import AnalyticsRepository
from momentum_analytics.service import apply_facts
from momentum_analytics.settings import MAX_REDELIVERY_DELAY_SECONDS, AnalyticsSettings
from momentum_shared.db import UnitOfWork, database_unreachable
from momentum_shared.events import AUTH_STREAM, TASK_STREAM, utcnow
from momentum_shared.jetstream import (
    ConsumerOptions,
    JetStreamConsumer,
    producer_context,
    span_context_of,
)
from momentum_shared.metrics import REGISTRY
from momentum_shared.nats import connect
from momentum_shared.tracing import tracing_enabled

logger = logging.getLogger("momentum.analytics.consumer")

Clock = Callable[[], datetime]
SessionFactory = async_sessionmaker[AsyncSession]

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

tracer = trace.get_tracer("momentum.analytics")


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


class EventConsumer:
    """Applies AUTH_EVENTS and TASK_EVENTS to the projections, once each in effect.

    The shared runner binds the durable ``analytics`` (created or updated at start-up)
    and fetches batches; this class applies each batch in one transaction with the inbox,
    acks after the commit, and parks poison as dead letters.
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
        self.runner = JetStreamConsumer(
            settings.nats_url,
            self.streams,
            self.handle,
            ConsumerOptions(
                durable=settings.consumer_durable,
                batch_size=settings.consumer_batch_size,
                fetch_timeout=settings.consumer_fetch_timeout_seconds,
                ack_wait=settings.consumer_ack_wait_seconds,
                max_ack_pending=settings.consumer_max_ack_pending,
                retry_interval=settings.consumer_retry_interval_seconds,
                lag_interval=settings.consumer_lag_interval_seconds,
                connect_timeout=max(1, round(settings.nats_connect_timeout_seconds)),
            ),
            service="analytics",
            nats_auth=settings.nats_auth,
        )

    def status(self) -> dict[str, Any]:
        """For ``/readyz`` (informational: NATS down never makes analytics unready)."""
        return self.runner.status()

    async def run(self) -> None:
        """Consume forever (until cancelled), surviving NATS outages and missing streams."""
        await self.runner.run()

    async def aclose(self) -> None:
        await self.runner.aclose()

    async def replay(self, js: JetStreamContext, stream: str) -> int:
        """Apply a whole stream from its first message through ``handle`` (for a rebuild)."""
        return await self.runner.replay(js, stream)

    # -- one batch -----------------------------------------------------------------------------

    async def handle(self, stream: str, messages: Sequence[Msg]) -> None:
        """Apply a fetched batch in one transaction, then ack; fall back to one by one."""
        spans = BatchTrace(stream, self.settings.consumer_durable) if tracing_enabled() else None
        batch: list[tuple[Msg, Fact]] = []
        for message in messages:
            try:
                fact = decode(message.data)
            except Exception as exc:
                # Decoding touches nothing outside the message: whatever it raises, the
                # message is at fault. Escaping here would fail the whole batch, forever.
                await self._failed(stream, message, exc)
                continue
            if fact is None:
                EVENTS.labels(stream, "ignored").inc()
                await _settle(message.ack())
                continue
            if spans is not None:
                spans.take(len(batch), message, fact)
            batch.append((message, fact))
        if not batch:
            return
        try:
            await self._apply_batch(stream, batch, spans)
        finally:
            if spans is not None:
                spans.end_all()  # those left by a cancellation

    async def _apply_batch(
        self, stream: str, batch: list[tuple[Msg, Fact]], spans: BatchTrace | None
    ) -> None:
        try:
            with spans.applying(len(batch)) if spans is not None else contextlib.nullcontext():
                async with UnitOfWork(self.session_factory) as uow:
                    result = await apply_facts(
                        AnalyticsRepository(uow.session),
                        [fact for _, fact in batch],
                        now=self.clock(),
                    )
        except Exception as exc:
            # One bad message must not hold back the rest of its batch.
            logger.warning(
                "batch failed; applying its messages one by one",
                extra={"stream": stream, "error": f"{type(exc).__name__}: {exc}"},
            )
            for index, (message, fact) in enumerate(batch):
                if spans is None:
                    await self._apply_one(stream, message, fact)
                    continue
                with spans.applying_one(index):
                    error = await self._apply_one(stream, message, fact)
                spans.end(index, error)
            return
        if spans is not None:
            spans.end_all()  # the batch has committed: its events are visible
        EVENTS.labels(stream, "applied").inc(result.applied)
        EVENTS.labels(stream, "duplicate").inc(result.duplicates)
        for message, _ in batch:
            await _settle(message.ack())

    async def _apply_one(self, stream: str, message: Msg, fact: Fact) -> Exception | None:
        """Apply one message in its own transaction; the error it failed with, if any."""
        try:
            async with UnitOfWork(self.session_factory) as uow:
                result = await apply_facts(
                    AnalyticsRepository(uow.session), [fact], now=self.clock()
                )
        except Exception as exc:
            await self._failed(stream, message, exc)
            return exc
        EVENTS.labels(stream, "applied").inc(result.applied)
        EVENTS.labels(stream, "duplicate").inc(result.duplicates)
        await _settle(message.ack())
        return None

    def _redelivery_delay(self, deliveries: int) -> float:
        return float(
            min(
                self.settings.consumer_nak_delay_seconds * 2 ** max(deliveries - 1, 0),
                MAX_REDELIVERY_DELAY_SECONDS,
            )
        )

    async def _failed(self, stream: str, message: Msg, error: BaseException) -> None:
        """Redeliver later; after the bound, park the message as a dead letter and terminate it."""
        deliveries = message.metadata.num_delivered
        # The database unreachable, not the message bad: never dead-letter.
        transient = database_unreachable(error)
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


class BatchTrace:
    """The spans of one batch, made only when tracing is on.

    Each event taken into the batch gets an ``analytics process <type>`` span whose parent is
    the span that published it (so the request's own trace shows when its event became
    visible here), ended once the batch has committed; the batch is one ``analytics apply``
    span linked to every event's producer span.
    """

    def __init__(self, stream: str, durable: str) -> None:
        self.stream = stream
        self.durable = durable
        self.links: list[Link] = []
        self._events: dict[int, Span] = {}

    def take(self, index: int, message: Msg, fact: Fact) -> None:
        """Start the process span of the batch's ``index``-th event, if it carries a trace."""
        fallback = {"traceparent": fact.traceparent, "tracestate": fact.tracestate}
        context = producer_context(message.headers, fallback)
        if context is None:
            return
        self.links.append(Link(span_context_of(context)))
        self._events[index] = tracer.start_span(
            f"analytics process {fact.event_type}",
            context=context,
            kind=SpanKind.CONSUMER,
            attributes={
                **self._attributes("process"),
                MESSAGING_DESTINATION_NAME: message.subject,
                MESSAGING_MESSAGE_ID: fact.event_id,
            },
        )

    @contextlib.contextmanager
    def applying(self, count: int) -> Iterator[Span]:
        """The batch's span, current while the batch is applied and committed."""
        with tracer.start_as_current_span(
            "analytics apply",
            kind=SpanKind.CONSUMER,
            links=self.links,
            attributes={**self._attributes("process"), MESSAGING_BATCH_MESSAGE_COUNT: count},
        ) as span:
            yield span

    @contextlib.contextmanager
    def applying_one(self, index: int) -> Iterator[None]:
        """The event's own span current while it is applied alone (after its batch failed)."""
        span = self._events.get(index)
        if span is None:
            yield
            return
        with trace.use_span(span, end_on_exit=False, record_exception=False):
            yield

    def end(self, index: int, error: BaseException | None = None) -> None:
        span = self._events.pop(index, None)
        if span is None:
            return
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        span.end()

    def end_all(self) -> None:
        for index in list(self._events):
            self.end(index)

    def _attributes(self, operation: str) -> dict[str, str]:
        return {
            MESSAGING_SYSTEM: "nats",
            MESSAGING_OPERATION_NAME: operation,
            MESSAGING_OPERATION_TYPE: MessagingOperationTypeValues.PROCESS.value,
            MESSAGING_CONSUMER_GROUP_NAME: self.durable,
        }


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
    """Empty the projections and the inbox, then replay both streams from their start.

    NATS is reached (and JetStream answers) before anything is emptied, so an outage
    fails the command instead of leaving the projections blank. So does a stream that no
    longer holds its whole history (its limits discarded its oldest events, or an operator
    purged or deleted some): a replay would lose them, so it raises
    :class:`IncompleteHistory` and leaves the projections as they are.
    """
    consumer = EventConsumer(session_factory, settings, clock=clock)
    nc = await connect(
        settings.nats_url,
        name="momentum-analytics-rebuild",
        connect_timeout=settings.nats_connect_timeout_seconds,
        auth=settings.nats_auth,
        max_reconnect_attempts=3,
    )
    try:
        js = nc.jetstream()
        await js.account_info()
        for stream in consumer.streams:
            await _require_whole_history(js, stream)
        async with UnitOfWork(session_factory) as uow:
            await AnalyticsRepository(uow.session).clear_projections()
        return {stream: await consumer.replay(js, stream) for stream in consumer.streams}
    finally:
        await nc.close()


class IncompleteHistory(RuntimeError):
    """A stream no longer holds every event since its first: a rebuild would lose some."""


async def _require_whole_history(js: JetStreamContext, stream: str) -> None:
    try:
        info = await js.stream_info(stream)
    except NotFoundError:
        return  # never created: nothing was published, nothing is missing
    state = info.state
    if state.first_seq <= 1 and not state.num_deleted:
        return
    config = info.config
    raise IncompleteHistory(
        f"stream {stream} no longer holds its whole history: it starts at sequence "
        f"{state.first_seq} of {state.last_seq} with {state.num_deleted or 0} deleted inside "
        f"(limits: max_age {config.max_age or 0:.0f} s, max_bytes {config.max_bytes}); a "
        "rebuild would lose the events before, so the projections are left as they are "
        "(restore the analytics database from a backup instead: docs/deploy.md)"
    )
