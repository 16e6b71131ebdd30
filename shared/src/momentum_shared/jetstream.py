"""A JetStream pull-consumer runner: durables created or updated at start-up, batches, lag.

The runner owns the NATS side (connection, binding, fetching, lag metrics, status for
``/readyz``, replays); what a batch means, and how each message is settled, belongs to
the service's handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanContext
from prometheus_client import Gauge

from momentum_shared.events import STREAM_SUBJECTS
from momentum_shared.lifespan import worker_status
from momentum_shared.metrics import NATS_CONNECTED, REGISTRY
from momentum_shared.nats import NatsAuth, connect

logger = logging.getLogger("momentum.consumer")

# Applies a fetched batch and settles (ack, nak or term) every message in it.
BatchHandler = Callable[[str, Sequence[Msg]], Awaitable[None]]

CONSUMER_PENDING = Gauge(
    "momentum_consumer_pending",
    "Messages of a stream not yet delivered to a durable consumer (its lag, num_pending)",
    ["service", "durable", "stream"],
    registry=REGISTRY,
)
CONSUMER_ACK_PENDING = Gauge(
    "momentum_consumer_ack_pending",
    "Messages delivered to a durable consumer and not yet acknowledged",
    ["service", "durable", "stream"],
    registry=REGISTRY,
)


def producer_context(
    headers: Mapping[str, str] | None, fallback: Mapping[str, str | None] | None = None
) -> Context | None:
    """The trace context of the span that published a message; None when it carries none.

    Read from the message's headers (``traceparent``/``tracestate``), falling back to
    ``fallback``: the CloudEvent's Distributed Tracing attributes of the same names.
    """
    for carrier in (headers, fallback):
        if carrier and carrier.get("traceparent"):
            context = propagate.extract(carrier)
            if trace.get_current_span(context).get_span_context().is_valid:
                return context
    return None


def span_context_of(context: Context) -> SpanContext:
    """The span context inside ``context`` (what a ``Link`` points at)."""
    return trace.get_current_span(context).get_span_context()


@dataclass(frozen=True)
class ConsumerOptions:
    durable: str
    batch_size: int = 200
    fetch_timeout: float = 1.0
    ack_wait: float = 30.0
    max_ack_pending: int = 1000
    retry_interval: float = 1.0
    lag_interval: float = 2.0
    connect_timeout: int = 2


@dataclass
class StreamState:
    state: str = "pending"
    pending: int | None = None
    ack_pending: int | None = None
    last_error: str | None = None


class JetStreamConsumer:
    """Durable pull consumers on several streams, feeding one batch handler.

    Every replica binds the same durable, so JetStream spreads the messages across them;
    the handler must be idempotent (JetStream delivers at least once, in no fixed order).
    """

    def __init__(
        self,
        nats_url: str,
        streams: Sequence[str],
        handler: BatchHandler,
        options: ConsumerOptions,
        *,
        service: str,
        nats_auth: NatsAuth | None = None,
    ) -> None:
        self.nats_url = nats_url
        self.nats_auth = nats_auth or NatsAuth()
        self.streams = tuple(streams)
        self.handler = handler
        self.options = options
        self.service = service
        self._nc: NATS | None = None
        self._last_error: str | None = None
        self._streams = {name: StreamState() for name in self.streams}

    def status(self) -> dict[str, Any]:
        """For ``/readyz`` (informational: NATS down never makes a service unready)."""
        connected = self._nc is not None and self._nc.is_connected
        return worker_status(
            connected,
            connected=connected,
            durable=self.options.durable,
            streams={
                name: {
                    "state": state.state,
                    "pending": state.pending,
                    "ack_pending": state.ack_pending,
                    **({"last_error": state.last_error} if state.last_error else {}),
                }
                for name, state in self._streams.items()
            },
            **({"last_error": self._last_error} if self._last_error and not connected else {}),
        )

    async def aclose(self) -> None:
        """Nothing to release: ``run`` closes its connection when it is cancelled."""

    def consumer_config(self, stream: str) -> ConsumerConfig:
        """The durable's configuration, applied on every bind (create or update)."""
        durable = self.options.durable
        return ConsumerConfig(
            name=durable,
            durable_name=durable,
            description=f"Momentum {self.service}",
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.options.ack_wait,
            # Unlimited on the server: the handler bounds poison itself and must not lose
            # messages that failed only because its database was down.
            max_deliver=-1,
            max_ack_pending=self.options.max_ack_pending,
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
                NATS_CONNECTED.labels(self.service).set(1)
                js = nc.jetstream()
                await asyncio.gather(*(self._consume(js, stream) for stream in self.streams))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._last_error = f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(self.options.retry_interval)
            finally:
                self._nc = None
                NATS_CONNECTED.labels(self.service).set(0)
                with contextlib.suppress(Exception):
                    await nc.close()

    async def _connect(self, nc: NATS) -> None:
        async def error(exc: Exception) -> None:
            self._last_error = f"{type(exc).__name__}: {exc}"

        async def disconnected() -> None:
            NATS_CONNECTED.labels(self.service).set(0)

        async def reconnected() -> None:
            NATS_CONNECTED.labels(self.service).set(1)

        await connect(
            self.nats_url,
            name=f"momentum-{self.service}",
            connect_timeout=self.options.connect_timeout,
            auth=self.nats_auth,
            client=nc,
            on_error=error,
            on_disconnected=disconnected,
            on_reconnected=reconnected,
        )

    async def bind(self, js: JetStreamContext, stream: str) -> JetStreamContext.PullSubscription:
        """Create or update the durable (``pull_subscribe`` would ignore a new config), bind."""
        await js.add_consumer(stream, self.consumer_config(stream))
        return await js.pull_subscribe_bind(durable=self.options.durable, stream=stream)

    async def _consume(self, js: JetStreamContext, stream: str) -> None:
        state = self._streams[stream]
        retry = self.options.retry_interval
        while True:
            try:
                subscription = await self.bind(js, stream)
            except asyncio.CancelledError:
                raise
            except NotFoundError:
                # Producers create their streams; a consumer may simply start first.
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
        """Fetch and hand over batches, the next fetch running while a batch is applied.

        ``fetch`` first takes what is already pending without waiting (so a backlog is read
        in full batches back to back), and only when nothing is pending lingers until the
        first message arrives, which it returns at once: a lone message is never held back
        waiting for a batch to fill, and the timeout only bounds an idle wait.
        """
        last_lag = 0.0
        labels = (self.service, self.options.durable, stream)
        prefetch = asyncio.create_task(self._fetch(subscription))
        try:
            while True:
                messages = await prefetch
                prefetch = asyncio.create_task(self._fetch(subscription))
                if messages:
                    await self.handler(stream, messages)
                if time.monotonic() - last_lag >= self.options.lag_interval:
                    info = await subscription.consumer_info()
                    state.pending, state.ack_pending = info.num_pending, info.num_ack_pending
                    CONSUMER_PENDING.labels(*labels).set(info.num_pending or 0)
                    CONSUMER_ACK_PENDING.labels(*labels).set(info.num_ack_pending or 0)
                    last_lag = time.monotonic()
        finally:
            await self._release(prefetch)

    async def _fetch(self, subscription: JetStreamContext.PullSubscription) -> list[Msg]:
        try:
            return await subscription.fetch(
                self.options.batch_size, timeout=self.options.fetch_timeout
            )
        except TimeoutError:  # nats' subclass, or asyncio's own at the deadline
            return []  # nothing to do: normal when the stream is idle

    @staticmethod
    async def _release(prefetch: asyncio.Task[list[Msg]]) -> None:
        """Stopping: hand messages fetched ahead back to JetStream for another replica."""
        if not prefetch.done():
            prefetch.cancel()
        await asyncio.wait({prefetch})
        if prefetch.cancelled() or prefetch.exception() is not None:
            return
        for message in prefetch.result():
            with contextlib.suppress(Exception):
                await message.nak()

    # -- replay ------------------------------------------------------------------------------

    async def replay(self, js: JetStreamContext, stream: str) -> int:
        """Feed a whole stream, from its first message, to the handler (for a rebuild).

        An ephemeral consumer delivers everything; the loop ends when nothing is pending
        or awaiting its ack. Returns how many distinct messages were delivered.
        """
        name = f"{self.options.durable}-replay-{uuid.uuid4().hex[:12]}"
        try:
            await js.add_consumer(
                stream,
                ConsumerConfig(
                    name=name,
                    deliver_policy=DeliverPolicy.ALL,
                    ack_policy=AckPolicy.EXPLICIT,
                    ack_wait=self.options.ack_wait,
                    max_ack_pending=self.options.max_ack_pending,
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
                        self.options.batch_size, timeout=self.options.fetch_timeout
                    )
                except TimeoutError:  # nats' subclass, or asyncio's own at the deadline
                    messages = []
                if messages:
                    delivered.update(message.metadata.sequence.stream for message in messages)
                    await self.handler(stream, messages)
                    continue
                info = await js.consumer_info(stream, name)
                if not info.num_pending and not info.num_ack_pending:
                    return len(delivered)
        finally:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
            with contextlib.suppress(Exception):
                await js.delete_consumer(stream, name)
