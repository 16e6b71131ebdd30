"""The deny-list of revoked sessions, fed by ``auth.session.revoked`` from JetStream.

Every replica reads the whole subject with its own ordered (ephemeral, in-memory) consumer
from the start of the stream, so a restarted gateway rebuilds the list from the stream and
every replica learns a revocation within milliseconds. The list lives in memory: when NATS
is down the gateway keeps refusing what it already knows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import DeliverPolicy
from prometheus_client import Counter, Gauge

from momentum_shared.events import AUTH_STREAM, CloudEvent, SessionRevoked
from momentum_shared.metrics import REGISTRY
from momentum_shared.nats import NatsAuth, connect

logger = logging.getLogger("momentum.gateway.revocation")

SUBJECT = SessionRevoked.event_type

REVOKED_SESSIONS = Gauge(
    "momentum_gateway_revoked_sessions",
    "Sessions on this replica's deny-list whose tokens may still be live",
    registry=REGISTRY,
)
REVOCATION_EVENTS = Counter(
    "momentum_gateway_revocation_events_total",
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
    every ``retry_interval`` seconds. Once subscribed, nats-py's ordered consumer recreates
    itself after an outage, resuming after the last stream sequence it saw.
    """

    def __init__(
        self,
        revocations: RevocationList,
        *,
        nats_url: str,
        nats_auth: NatsAuth | None = None,
        connect_timeout: float = 2.0,
        retry_interval: float = 1.0,
        heartbeat: float = 2.0,
        stream: str = AUTH_STREAM,
    ) -> None:
        self.revocations = revocations
        self.nats_url = nats_url
        self.nats_auth = nats_auth
        self.connect_timeout = connect_timeout
        self.retry_interval = retry_interval
        self.heartbeat = heartbeat
        self.stream = stream
        self.state = "starting"
        self.events = 0
        self.caught_up = False
        self.last_error: str | None = None
        self._nc: NATS | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="revocation-listener")

    def status(self) -> dict[str, Any]:
        """For ``/readyz`` (informational: NATS being down never makes the gateway unready)."""
        connected = self._nc is not None and self._nc.is_connected
        return {
            "status": self.state if connected or self.state != "subscribed" else "disconnected",
            "nats_connected": connected,
            "caught_up": self.caught_up,
            "revoked_sessions": len(self.revocations),
            "events": self.events,
            "last_error": self.last_error,
        }

    async def run(self) -> None:
        self.state = "connecting"
        while self._nc is None:
            try:
                # With reconnects unlimited, nats-py itself keeps retrying the first connect.
                self._nc = await connect(
                    self.nats_url,
                    name="momentum-gateway",
                    auth=self.nats_auth,
                    connect_timeout=self.connect_timeout,
                    reconnect_time_wait=self.retry_interval,
                )
            except Exception as exc:
                self._failed("connecting", exc)
                await asyncio.sleep(self.retry_interval)
        js = self._nc.jetstream()
        while True:
            try:
                subscription = await js.subscribe(
                    SUBJECT,
                    stream=self.stream,
                    cb=self._on_message,
                    ordered_consumer=True,
                    deliver_policy=DeliverPolicy.ALL,
                    idle_heartbeat=self.heartbeat,
                )
            except Exception as exc:
                # Typically "stream not found" until auth has started once.
                self._failed("waiting for stream", exc)
                await asyncio.sleep(self.retry_interval)
                continue
            self.state = "subscribed"
            self.last_error = None
            with contextlib.suppress(Exception):
                # Nothing to replay means the (empty) deny-list is already complete.
                info = await subscription.consumer_info()
                if not info.num_pending:
                    self.caught_up = True
            logger.info("subscribed to session revocations", extra={"stream": self.stream})
            return

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
        with contextlib.suppress(Exception):
            self.caught_up = msg.metadata.num_pending == 0
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
