"""The deny-list of revoked sessions, fed by ``auth.session.revoked`` from JetStream.

The gateway, tasks and analytics each keep one per replica. Every replica reads the subject
with its own ordered (ephemeral, in-memory) consumer, starting at the oldest revocation that
can still matter (now minus the longest access-token lifetime and the leeway), so a new
replica rebuilds the list from the stream and every replica learns a revocation within
milliseconds. A replica is unready until it has read every revocation that was in the stream
when it subscribed. The list lives in memory: when NATS is down later, the replica keeps
refusing what it already knows.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from opentelemetry import trace
from opentelemetry.semconv._incubating.attributes.messaging_attributes import (
    MESSAGING_DESTINATION_NAME,
    MESSAGING_MESSAGE_ID,
    MESSAGING_OPERATION_NAME,
    MESSAGING_OPERATION_TYPE,
    MESSAGING_SYSTEM,
    MessagingOperationTypeValues,
)
from opentelemetry.trace import Link, SpanKind
from prometheus_client import Counter, Gauge

from momentum_shared.events import AUTH_STREAM, CloudEvent, SessionRevoked
from momentum_shared.jetstream import producer_context, span_context_of
from momentum_shared.lifespan import worker_status
from momentum_shared.metrics import REGISTRY
from momentum_shared.nats import NatsAuth, connect
from momentum_shared.settings import RevocationSettings
from momentum_shared.state import shared_state
from momentum_shared.tracing import tracing_enabled

logger = logging.getLogger("momentum.revocation")

SUBJECT = SessionRevoked.event_type

tracer = trace.get_tracer("momentum.revocation")

REVOKED_SESSIONS = Gauge(
    "momentum_revoked_sessions",
    "Sessions on this replica's deny-list whose tokens may still be live",
    registry=REGISTRY,
)
REVOCATION_EVENTS = Counter(
    "momentum_revocation_events_total",
    "auth.session.revoked events read, by outcome",
    ["outcome"],
    registry=REGISTRY,
)


class RevocationList:
    """Session id -> the moment after which no token of that session can be valid anyway."""

    def __init__(self, *, leeway: float = 60.0, clock: Callable[[], float] = time.time) -> None:
        self.leeway = leeway
        self._clock = clock
        self._until: dict[str, float] = {}
        self._next_prune = 0.0

    def __len__(self) -> int:
        return len(self._until)

    def revoke(self, sid: str, expires_at: float) -> bool:
        """Deny ``sid`` until ``expires_at`` (plus the verifier's leeway); False if already past."""
        until = expires_at + self.leeway
        if until <= self._clock():
            return False
        self._until[sid] = max(until, self._until.get(sid, 0.0))
        self._prune()
        return True

    def is_revoked(self, sid: str | None) -> bool:
        if sid is None or not self._until:
            return False
        until = self._until.get(sid)
        if until is None:
            canonical = _canonical(sid)
            if canonical == sid or (until := self._until.get(canonical)) is None:
                return False
            sid = canonical
        if until > self._clock():
            return True
        del self._until[sid]
        return False

    def _prune(self) -> None:
        now = self._clock()
        if now < self._next_prune:
            return
        self._next_prune = now + 60.0
        for sid in [s for s, until in self._until.items() if until <= now]:
            del self._until[sid]
        REVOKED_SESSIONS.set(len(self._until))


def _canonical(sid: str) -> str:
    """The event's spelling of a session id (``str(UUID)``), whatever the token's was."""
    if len(sid) == 36 and sid == sid.lower():
        return sid
    try:
        return str(uuid.UUID(sid))
    except ValueError:
        return sid


class RevocationListener:
    """Keeps a ``RevocationList`` fed from JetStream, retrying in the background until it can.

    The stream may not exist yet (auth creates it) and NATS may be down: both are retried
    every ``retry_interval`` seconds. The replay starts ``horizon`` seconds before now (the
    longest access-token lifetime plus the leeway): older revocations cannot concern a token
    that still verifies. Once subscribed, nats-py's ordered consumer recreates itself after
    an outage, resuming after the last stream sequence it saw.
    """

    def __init__(
        self,
        revocations: RevocationList,
        *,
        nats_url: str,
        name: str,
        horizon: float,
        nats_auth: NatsAuth | None = None,
        connect_timeout: float = 2.0,
        retry_interval: float = 1.0,
        heartbeat: float = 2.0,
        stream: str = AUTH_STREAM,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.revocations = revocations
        self.nats_url = nats_url
        self.nats_auth = nats_auth
        self.name = name
        self.horizon = horizon
        self.connect_timeout = connect_timeout
        self.retry_interval = retry_interval
        self.heartbeat = heartbeat
        self.stream = stream
        self._clock = clock
        self.state = "starting"
        self.events = 0
        self.caught_up = False
        self.last_error: str | None = None
        self._nc: NATS | None = None
        self._task: asyncio.Task[None] | None = None
        # The stream sequence of the newest revocation when the replay started, and the last
        # one read: caught up once the second reaches the first. ``None`` when that newest
        # one could not be looked up: then the consumer's pending count decides.
        self._catch_up_to: int | None = 0
        self._read_up_to = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="revocation-listener")

    def status(self) -> dict[str, Any]:
        """For ``/readyz``: the feed's state (only ``check_caught_up`` gates readiness)."""
        connected = self._nc is not None and self._nc.is_connected
        state = self.state if connected or self.state != "subscribed" else "disconnected"
        return worker_status(
            state == "subscribed",
            state=state,
            nats_connected=connected,
            caught_up=self.caught_up,
            revoked_sessions=len(self.revocations),
            events=self.events,
            last_error=self.last_error,
        )

    async def check_caught_up(self) -> None:
        """Readiness: every revocation in the stream at start-up has been read.

        Once caught up, stays so: NATS going away later never makes a replica unready.
        """
        if not self.caught_up:
            raise RuntimeError(f"revocations not caught up: {self.state}")

    def start_time(self) -> dt.datetime:
        """The replay's start: revocations published earlier cannot concern a live token."""
        return dt.datetime.fromtimestamp(self._clock() - self.horizon, dt.UTC)

    async def run(self) -> None:
        self.state = "connecting"
        while self._nc is None:
            try:
                # With reconnects unlimited, nats-py itself keeps retrying the first connect.
                self._nc = await connect(
                    self.nats_url,
                    name=f"momentum-{self.name}",
                    auth=self.nats_auth,
                    connect_timeout=self.connect_timeout,
                    reconnect_time_wait=self.retry_interval,
                )
            except Exception as exc:
                self._failed("connecting", exc)
                await asyncio.sleep(self.retry_interval)
        js = self._nc.jetstream(timeout=max(self.connect_timeout, 1.0))
        while True:
            start = self.start_time()
            try:
                await self._find_catch_up_target(js, start)
                config = ConsumerConfig(opt_start_time=start)
                subscription = await js.subscribe(
                    SUBJECT,
                    stream=self.stream,
                    cb=self._on_message,
                    config=config,
                    ordered_consumer=True,
                    deliver_policy=DeliverPolicy.BY_START_TIME,
                    idle_heartbeat=self.heartbeat,
                )
            except Exception as exc:
                # Typically "stream not found" until auth has started once.
                self._failed("waiting for stream", exc)
                await asyncio.sleep(self.retry_interval)
                continue
            # nats-py keeps this config and, recreating the consumer after an outage, switches
            # it to a start sequence; the server refuses a start time alongside one.
            config.opt_start_time = None
            self.state = "subscribed"
            self.last_error = None
            if self._catch_up_to is None:
                with contextlib.suppress(Exception):
                    info = await subscription.consumer_info()
                    delivered = info.delivered.consumer_seq if info.delivered else 0
                    if not info.num_pending and not delivered:
                        self._caught_up()  # nothing to replay: the empty list is complete
            self._update_caught_up()
            logger.info(
                "subscribed to session revocations",
                extra={"stream": self.stream, "since": start.isoformat()},
            )
            return

    async def _find_catch_up_target(self, js: JetStreamContext, start: dt.datetime) -> None:
        """Remember the newest revocation in the stream, if it is inside the replay."""
        if self.caught_up:
            return
        newest: int | None
        try:
            last = await js.get_last_msg(self.stream, SUBJECT)
        except NotFoundError:
            # No stream, or no revocation in it: an empty deny-list is complete.
            newest = 0
        except Exception as exc:
            # Typically a NATS account without the message-get permission.
            logger.warning(
                "cannot look up the newest revocation; relying on the consumer's pending count",
                extra={"error": f"{type(exc).__name__}: {exc}"},
            )
            newest = None
        else:
            newest = last.seq or 0
            if last.time is not None and last.time < start:
                newest = 0  # everything there is older than the replay
        self._catch_up_to = newest
        self._update_caught_up()

    def _update_caught_up(self) -> None:
        if self._catch_up_to is not None and self._read_up_to >= self._catch_up_to:
            self._caught_up()

    def _caught_up(self) -> None:
        if not self.caught_up:
            self.caught_up = True
            logger.info("session revocations caught up", extra={"events": self.events})

    def _failed(self, state: str, exc: Exception) -> None:
        first = self.state != state
        self.state = state
        self.last_error = f"{type(exc).__name__}: {exc}"
        if first:
            logger.warning(
                "session revocations unavailable; retrying",
                extra={"state": state, "error": self.last_error},
            )

    async def _on_message(self, msg: Msg) -> None:
        try:
            self._apply(msg)
        finally:
            with contextlib.suppress(Exception):
                self._read_up_to = max(self._read_up_to, msg.metadata.sequence.stream)
                if self._catch_up_to is None and msg.metadata.num_pending == 0:
                    self._caught_up()
            self._update_caught_up()

    def _apply(self, msg: Msg) -> None:
        try:
            event = CloudEvent.from_json(msg.data)
            data = event.typed_data()
        except ValueError as exc:
            REVOCATION_EVENTS.labels("malformed").inc()
            logger.warning("ignoring a malformed revocation event", extra={"error": str(exc)})
            return
        if not isinstance(data, SessionRevoked):
            REVOCATION_EVENTS.labels("ignored").inc()
            return
        if not tracing_enabled():
            self._revoke(data)
            return
        # A span of this replica's own, linked to the one that published the revocation:
        # every replica reads every revocation, so none of them belongs in auth's trace.
        context = producer_context(
            msg.headers, {"traceparent": event.traceparent, "tracestate": event.tracestate}
        )
        with tracer.start_as_current_span(
            "revocations apply",
            kind=SpanKind.CONSUMER,
            links=[Link(span_context_of(context))] if context is not None else None,
            attributes={
                MESSAGING_SYSTEM: "nats",
                MESSAGING_DESTINATION_NAME: msg.subject,
                MESSAGING_OPERATION_NAME: "process",
                MESSAGING_OPERATION_TYPE: MessagingOperationTypeValues.PROCESS.value,
                MESSAGING_MESSAGE_ID: event.id,
            },
        ):
            self._revoke(data)

    def _revoke(self, data: SessionRevoked) -> None:
        self.events += 1
        live = self.revocations.revoke(str(data.session_id), data.expires_at.timestamp())
        REVOCATION_EVENTS.labels("applied" if live else "expired").inc()
        REVOKED_SESSIONS.set(len(self.revocations))

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.close()
            self._nc = None


def build_listener(
    settings: RevocationSettings, revocations: RevocationList, *, name: str
) -> RevocationListener:
    """A listener for ``name``'s replica, configured from its settings."""
    revocations.leeway = float(settings.token_leeway_seconds)
    return RevocationListener(
        revocations,
        nats_url=settings.nats_url,
        nats_auth=settings.nats_auth,
        name=name,
        horizon=settings.revocation_replay_seconds + settings.token_leeway_seconds,
        connect_timeout=settings.nats_connect_timeout_seconds,
        retry_interval=settings.revocation_retry_seconds,
        heartbeat=settings.revocation_heartbeat_seconds,
    )


@contextlib.asynccontextmanager
async def following_revocations(
    app: FastAPI,
    settings: RevocationSettings,
    *,
    name: str,
    revocations: RevocationList | None = None,
) -> AsyncIterator[RevocationList]:
    """Install the app's revocation list (checked by ``current_claims``) and keep it fed.

    The replica is unready until the list has caught up with the stream; after that, NATS
    being down is only reported. With ``revocation_enabled`` off the list stays empty.
    """
    if revocations is None:
        revocations = RevocationList()
    revocations.leeway = float(settings.token_leeway_seconds)
    shared = shared_state(app)
    shared.revocations = revocations
    if not settings.revocation_enabled:
        yield revocations
        return
    listener = build_listener(settings, revocations, name=name)
    shared.revocation_listener = listener
    shared.readiness.require("revocations_caught_up", listener.check_caught_up)
    shared.readiness.inform("revocations", listener.status)
    listener.start()
    try:
        yield revocations
    finally:
        await listener.aclose()
