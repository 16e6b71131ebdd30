"""The gateway's hot path as raw ASGI: route, authenticate, authorise, rate-limit, proxy.

Besides the token buckets, the requests one client address and one user may have in flight
at once are capped, so no single client holds more than a small share of an upstream's pool.

It sits inside the house middleware (request id, metrics) and in front of FastAPI's router,
which only ever sees the gateway's own paths (health, readiness, the API description).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from opentelemetry.trace import Span, SpanKind, StatusCode, Tracer, set_span_in_context
from prometheus_client import Counter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from momentum_gateway.proxy import UpstreamProxy
from momentum_gateway.ratelimit import InFlight, TokenBuckets
from momentum_gateway.routing import TABLE, Rule, has_dot_segments, match, route_template
from momentum_gateway.settings import GatewaySettings
from momentum_shared import tracing
from momentum_shared.errors import (
    BadRequest,
    InsufficientScope,
    ProblemError,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
)
from momentum_shared.metrics import REGISTRY
from momentum_shared.requestid import sane_request_id
from momentum_shared.security import (
    Claims,
    InvalidToken,
    KeysUnavailable,
    RevocationList,
    TokenVerifier,
    bearer_token,
)

logger = logging.getLogger("momentum.gateway")

DENIED = Counter(
    "momentum_gateway_denied_total",
    "Requests the gateway answered itself instead of proxying, by reason",
    ["reason"],
    registry=REGISTRY,
)


@dataclass
class Gateway:
    """Everything the hot path needs; built by ``create_app``, started by the lifespan."""

    settings: GatewaySettings
    table: tuple[Rule, ...] = TABLE
    revocations: RevocationList = field(default_factory=RevocationList)
    verifier: TokenVerifier | None = None
    proxy: UpstreamProxy | None = None
    user_limits: TokenBuckets = field(init=False)
    address_limits: TokenBuckets = field(init=False)
    user_in_flight: InFlight = field(init=False)
    address_in_flight: InFlight = field(init=False)

    def __post_init__(self) -> None:
        s = self.settings
        self.user_limits = TokenBuckets(
            s.rate_limit_user_per_second, s.rate_limit_user_burst, max_keys=s.rate_limit_max_keys
        )
        self.address_limits = TokenBuckets(
            s.rate_limit_address_per_second,
            s.rate_limit_address_burst,
            max_keys=s.rate_limit_max_keys,
        )
        self.user_in_flight = InFlight(s.max_in_flight_per_user)
        self.address_in_flight = InFlight(s.max_in_flight_per_address)
        self.revocations.leeway = float(s.token_leeway_seconds)


def _address_limited(rule: Rule, wait: int) -> TooManyRequests:
    if not rule.oauth:
        return TooManyRequests("too many requests from this address", retry_after=wait)
    # Not invalid_grant: a client must not throw its refresh token away for being early.
    refused = TooManyRequests(
        "too many requests from this address",
        retry_after=wait,
        extra={"error": "invalid_request"},
    )
    refused.headers["Cache-Control"] = "no-store"
    return refused


class GatewayMiddleware:
    """Proxies every path in the routing table; hands everything else to the app's router.

    With tracing on, the request's server span is named by its route template, and token
    verification, rate limiting and the proxying are spans of their own (``gateway.*``);
    with tracing off (``tracer`` is None) none of that code runs.
    """

    def __init__(self, app: ASGIApp, *, gateway: Gateway) -> None:
        self.app = app
        self.gateway = gateway
        self.tracer = tracing.tracer("momentum.gateway")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        method: str = scope["method"]
        rule = match(method, path, self.gateway.table)
        if rule is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = rule  # the metrics middleware labels by ``route.path``
        if self.tracer is not None:
            tracing.name_server_span(method, route_template(rule, path))
        try:
            await self._handle(rule, scope, receive, send)
        except ProblemError as error:
            await error.to_response()(scope, receive, send)

    async def _handle(self, rule: Rule, scope: Scope, receive: Receive, send: Send) -> None:
        gateway = self.gateway
        if has_dot_segments(scope["path"]):
            DENIED.labels("bad_path").inc()
            raise BadRequest("the path has dot segments")
        client = scope.get("client")
        address = str(client[0]) if client else "unknown"
        in_flight = gateway.address_in_flight
        if not in_flight.enabled:
            await self._admit(rule, address, scope, receive, send)
            return
        if not in_flight.enter(address):
            DENIED.labels("too_many_in_flight").inc()
            raise TooManyRequests("too many requests in flight from this address", retry_after=1)
        try:
            await self._admit(rule, address, scope, receive, send)
        finally:
            in_flight.leave(address)

    async def _admit(
        self, rule: Rule, address: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        gateway = self.gateway
        tracer = self.tracer
        if rule.public:
            if rule.limit_by_address and gateway.address_limits.enabled:
                if tracer is None:
                    self._limit_address(rule, address)
                else:
                    with _step(
                        tracer, "gateway.rate_limit", {"momentum.rate_limit.key": "address"}
                    ):
                        self._limit_address(rule, address)
            await self._forward(rule, scope, receive, send)
            return
        if tracer is None:
            claims = await self._authenticate(rule, scope)
        else:
            with _step(tracer, "gateway.verify_token", None):
                claims = await self._authenticate(rule, scope)
        if gateway.user_limits.enabled:
            if tracer is None:
                self._limit_user(claims.sub)
            else:
                with _step(tracer, "gateway.rate_limit", {"momentum.rate_limit.key": "user"}):
                    self._limit_user(claims.sub)
        in_flight = gateway.user_in_flight
        if not in_flight.enabled:
            await self._forward(rule, scope, receive, send)
            return
        if not in_flight.enter(claims.sub):
            DENIED.labels("too_many_in_flight").inc()
            raise TooManyRequests("too many requests in flight for this user", retry_after=1)
        try:
            await self._forward(rule, scope, receive, send)
        finally:
            in_flight.leave(claims.sub)

    def _limit_address(self, rule: Rule, address: str) -> None:
        wait = self.gateway.address_limits.take(address)
        if wait:
            DENIED.labels("rate_limited").inc()
            raise _address_limited(rule, wait)

    def _limit_user(self, user: str) -> None:
        wait = self.gateway.user_limits.take(user)
        if wait:
            DENIED.labels("rate_limited").inc()
            raise TooManyRequests("too many requests for this user", retry_after=wait)

    async def _authenticate(self, rule: Rule, scope: Scope) -> Claims:
        """The verified claims of the request's bearer token, which must carry ``rule.scope``."""
        gateway = self.gateway
        token = bearer_token(scope["headers"])
        if token is None:
            DENIED.labels("unauthenticated").inc()
            raise Unauthorized("a bearer token is required", error=None)
        verifier = gateway.verifier
        if verifier is None:
            raise ServiceUnavailable(
                "the gateway is starting", retry_after=gateway.settings.retry_after_seconds
            )
        try:
            claims = await verifier.verify(token)
        except KeysUnavailable as exc:
            DENIED.labels("keys_unavailable").inc()
            retry_after = gateway.settings.retry_after_seconds
            raise ServiceUnavailable(str(exc), retry_after=retry_after) from None
        except InvalidToken as exc:
            DENIED.labels("invalid_token").inc()
            raise Unauthorized(str(exc)) from None
        if gateway.revocations.is_revoked(claims.sid):
            DENIED.labels("revoked").inc()
            raise Unauthorized("the session of this token was revoked")
        if rule.scope is not None and rule.scope not in claims.scopes:
            DENIED.labels("insufficient_scope").inc()
            raise InsufficientScope(rule.scope)
        return claims

    async def _forward(self, rule: Rule, scope: Scope, receive: Receive, send: Send) -> None:
        proxy = self.gateway.proxy
        if proxy is None:
            retry_after = self.gateway.settings.retry_after_seconds
            raise ServiceUnavailable("the gateway is starting", retry_after=retry_after)
        state = scope.get("state") or {}
        request_id = state.get("request_id") or sane_request_id(None)
        tracer = self.tracer
        if tracer is None:
            await proxy.forward(rule.service, scope, receive, send, request_id)
            return
        host, port = proxy.address(rule.service)
        # Not made current: the upstream learns it as its parent from the headers, and
        # attaching a context would cost as much as the span (see _step).
        span = tracer.start_span(
            "gateway.proxy",
            kind=SpanKind.CLIENT,
            attributes={
                "momentum.upstream": rule.service,
                "http.request.method": scope["method"],
                "server.address": host,
                "server.port": port,
            },
            record_exception=False,
            set_status_on_exception=False,
        )
        try:
            await proxy.forward(
                rule.service,
                scope,
                receive,
                _status_recorder(span, send),
                request_id,
                trace_context=set_span_in_context(span),
            )
        except Exception as error:
            span.record_exception(error)
            span.set_status(StatusCode.ERROR, f"{type(error).__name__}: {error}")
            raise
        finally:
            span.end()


@contextlib.contextmanager
def _step(tracer: Tracer, name: str, attributes: dict[str, str] | None) -> Iterator[Span]:
    """A span for one step of admission; a refusal is an outcome, not an error, below 500.

    A child of the current (server) span but not made current itself: a step starts no
    spans of its own on the hot path, and attaching a context costs as much as the span.
    """
    span = tracer.start_span(
        name, attributes=attributes, record_exception=False, set_status_on_exception=False
    )
    try:
        yield span
    except ProblemError as error:
        span.set_attribute("momentum.gateway.refused", error.status)
        if error.status >= 500:
            span.set_status(StatusCode.ERROR, error.detail)
        raise
    finally:
        span.end()


def _status_recorder(span: Span, send: Send) -> Send:
    """``send``, noting the status of the answer on ``span`` (an error from 500 on)."""

    async def recording_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            status: int = message["status"]
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(StatusCode.ERROR)
        await send(message)

    return recording_send
