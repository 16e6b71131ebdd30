"""Forwarding one ASGI request to an upstream service over pooled keep-alive aiohttp connections.

Raw ASGI in, raw ASGI out: no Request/Response objects on the hot path. A request body
(bounded by ``max_body_bytes``) is read completely, under a deadline, before an upstream
connection is taken, so a client that never finishes its body holds none; the wait for a
free connection is bounded too. Responses stream; a small one with a known length is sent in
one piece.

Trace context (docs/adr/0012-tracing.md): with tracing on, the gateway takes part in the
trace, so the client's propagation fields (``traceparent``, ``tracestate``, ``baggage``) are
not copied; the current context's are written instead, naming the gateway's client span
``gateway.proxy`` as the parent (the aiohttp instrumentation is off on the proxy's
session). With tracing off the gateway is a hop that does not take part, and forwards the
client's fields unchanged, as W3C Trace Context asks of such a hop.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from urllib.parse import quote

import aiohttp
from opentelemetry.context import Context
from prometheus_client import Counter, Gauge
from starlette.types import Receive, Scope, Send
from yarl import URL

from momentum_gateway.errors import RequestTimeout
from momentum_gateway.settings import GatewaySettings
from momentum_shared.errors import (
    BadGateway,
    BadRequest,
    GatewayTimeout,
    PayloadTooLarge,
    ProblemError,
    ServiceUnavailable,
)
from momentum_shared.metrics import REGISTRY
from momentum_shared.tracing import inject_context, propagation_fields, tracing_enabled

logger = logging.getLogger("momentum.gateway.proxy")

UPSTREAM_ERRORS = Counter(
    "momentum_gateway_upstream_errors_total",
    "Requests the gateway could not complete upstream, by service and kind",
    ["service", "kind"],
    registry=REGISTRY,
)
UPSTREAM_BUSY = Gauge(
    "momentum_gateway_upstream_connections_in_use",
    "Upstream connections taken by requests in flight, by service (at most upstream_pool_size)",
    ["service"],
    registry=REGISTRY,
)

# RFC 9110 §7.6.1 hop-by-hop fields, plus the ones that only make sense on one connection.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
        b"expect",
        b"host",
    }
)
# Identity and forwarding headers a client could forge. The gateway's callers are identified
# by their verified token alone (docs/spec/README.md §2.6); the forwarding headers are set below.
STRIPPED_PREFIXES = (
    b"x-user",
    b"x-forwarded-",
    b"x-auth",
    b"x-remote-",
    b"remote-user",
    b"x-authenticated",
    b"x-consumer-",
    b"x-credential",
    b"x-jwt",
    b"x-id-token",
    b"x-access-token",
    b"x-momentum-",
    b"x-original-",
    b"x-real-ip",
    b"x-client-ip",
    b"x-scope",
    b"x-role",
    b"x-tenant",
    b"x-account",
    b"x-request-id",
    b"forwarded",
)
# uvicorn adds its own Date and Server; an upstream's copies would be duplicates.
RESPONSE_DROPPED = HOP_BY_HOP | {b"date", b"server"}
SMALL_BODY = 64 * 1024
NO_BODY_STATUSES = frozenset({204, 304})
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


class _ClientGone(Exception):
    pass


def connection_tokens(headers: list[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """Header names a ``Connection`` field declares hop-by-hop (RFC 9110 §7.6.1)."""
    names: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            names.update(t.strip().lower() for t in value.split(b",") if t.strip())
    return frozenset(names)


def upstream_request_headers(
    scope: Scope, request_id: str, *, dropped: frozenset[bytes] = HOP_BY_HOP
) -> list[tuple[str, str]]:
    """The client's headers minus hop-by-hop and identity ones, plus the forwarding set.

    ``dropped`` (which must include ``host``) names the fields not copied: ``HOP_BY_HOP``,
    plus the propagation fields when the caller writes the trace context itself.
    """
    raw: list[tuple[bytes, bytes]] = scope["headers"]
    extra_hop = connection_tokens(raw) if any(n == b"connection" for n, _ in raw) else None
    out: list[tuple[str, str]] = []
    host = ""
    for name, value in raw:
        if name in dropped:
            if name == b"host":
                host = value.decode("latin-1")
            continue
        if name.startswith(STRIPPED_PREFIXES) or (extra_hop and name in extra_hop):
            continue
        out.append((name.decode("latin-1"), value.decode("latin-1")))
    out.append(("X-Request-ID", request_id))
    client = scope.get("client")
    if client:
        out.append(("X-Forwarded-For", str(client[0])))
    out.append(("X-Forwarded-Proto", str(scope.get("scheme", "http"))))
    if host:
        out.append(("X-Forwarded-Host", host))
    return out


def response_headers(raw: tuple[tuple[bytes, bytes], ...]) -> list[tuple[bytes, bytes]]:
    extra_hop = connection_tokens(list(raw))
    return [
        (lower, value)
        for name, value in raw
        if (lower := name.lower()) not in RESPONSE_DROPPED and lower not in extra_hop
    ]


# What ``declared_length`` answers besides a length: plain ints, so the hot path stays cheap.
CHUNKED = -1
"""The body is sent with ``Transfer-Encoding``: its length is not known in advance."""
MALFORMED_LENGTH = -2
"""The ``Content-Length`` header is not a number: the request is answered 400."""


def declared_length(scope: Scope) -> int | None:
    """The request's ``Content-Length``, ``CHUNKED``, ``MALFORMED_LENGTH``, or None (no body)."""
    length: int | None = None
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                return MALFORMED_LENGTH
        elif name == b"transfer-encoding":
            return CHUNKED
    return length


class UpstreamProxy:
    """One ``aiohttp.ClientSession`` for every upstream: pooled keep-alive, no cookies.

    A semaphore per upstream, as large as its pool, hands out the pooled connections: a
    request that cannot get one within ``upstream_pool_timeout_seconds`` is answered 503.
    """

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self._bases = {name: url.rstrip("/") for name, url in settings.upstreams().items()}
        self.max_body = settings.max_body_bytes
        self.body_timeout = settings.body_timeout_seconds
        self.pool_timeout = settings.upstream_pool_timeout_seconds
        self.retry_after = settings.retry_after_seconds
        self._session: aiohttp.ClientSession | None = None
        self.traced = tracing_enabled()
        self._traced_dropped = HOP_BY_HOP | propagation_fields()
        self._slots = {name: asyncio.Semaphore(settings.upstream_pool_size) for name in self._bases}

    def address(self, service: str) -> tuple[str, int]:
        """The host and port of ``service``'s base URL (``server.*`` of the client span)."""
        url = URL(self._bases[service])
        return url.host or "", url.port or 0

    def in_use(self, service: str) -> int:
        """Upstream connections of ``service`` that requests hold right now."""
        return self.settings.upstream_pool_size - self._slots[service]._value

    async def start(self) -> None:
        for name in self._slots:
            UPSTREAM_BUSY.labels(name).set_function(functools.partial(self.in_use, name))
        connector = aiohttp.TCPConnector(
            limit=0,
            limit_per_host=self.settings.upstream_pool_size,
            keepalive_timeout=self.settings.upstream_keepalive_seconds,
            ttl_dns_cache=300,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=None,
                sock_connect=self.settings.upstream_connect_timeout_seconds,
                sock_read=self.settings.upstream_timeout_seconds,
            ),
            # Bytes pass through untouched: no decompression, no cookie jar shared between
            # users, no headers of aiohttp's own, no proxy from the environment.
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept"),
            trust_env=False,
        )
        if self.traced:
            # The gateway's own ``gateway.proxy`` span is the client span of the upstream call
            # and writes the trace context itself: the aiohttp instrumentation's span would
            # repeat it at a fifth of the gateway's traced CPU (docs/adr/0012-tracing.md).
            from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor

            AioHttpClientInstrumentor.uninstrument_session(self._session)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def url_for(self, service: str, scope: Scope) -> URL:
        raw_path = scope.get("raw_path")
        path = raw_path.decode("latin-1") if raw_path else _quote_path(scope["path"])
        query = scope.get("query_string", b"")
        target = self._bases[service] + path
        if query:
            target += "?" + query.decode("latin-1")
        # encoded=True: the path goes upstream exactly as the client spelled it (no folding of
        # dot segments, no re-quoting), so the upstream routes what the gateway authorised.
        return URL(target, encoded=True)

    async def read_body(self, receive: Receive) -> bytes:
        """The whole request body within ``body_timeout_seconds``, at most ``max_body_bytes``."""
        chunks: list[bytes] = []
        received = 0
        more = True
        try:
            async with asyncio.timeout(self.body_timeout):
                while more:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise _ClientGone
                    chunk: bytes = message.get("body", b"")
                    more = bool(message.get("more_body", False))
                    received += len(chunk)
                    if received > self.max_body:
                        raise _too_large(self.max_body)
                    if chunk:
                        chunks.append(chunk)
        except TimeoutError:
            raise _body_timeout(self.body_timeout) from None
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def forward(
        self,
        service: str,
        scope: Scope,
        receive: Receive,
        send: Send,
        request_id: str,
        *,
        trace_context: Context | None = None,
    ) -> None:
        """Send the request upstream and stream the answer back; errors become problem+json.

        With tracing on, the upstream continues ``trace_context`` (the current one if None).
        """
        session = self._session
        if session is None:
            raise ServiceUnavailable("the gateway is starting", retry_after=self.retry_after)
        method: str = scope["method"]
        length = declared_length(scope)
        if length == MALFORMED_LENGTH:
            await _send_problem(send, _bad_length())
            return
        if length is not None and length > self.max_body:
            UPSTREAM_ERRORS.labels(service, "too_large").inc()
            await _send_problem(send, _too_large(self.max_body))
            return
        data: bytes | None = None
        if length is not None and length != 0:
            try:
                data = await self.read_body(receive)
            except _ClientGone:
                return  # the client left; nobody is waiting for an answer
            except ProblemError as exc:
                kind = "too_large" if isinstance(exc, PayloadTooLarge) else "body_timeout"
                UPSTREAM_ERRORS.labels(service, kind).inc()
                await _send_problem(send, exc)
                return
        slots = self._slots[service]
        if slots.locked():
            try:
                async with asyncio.timeout(self.pool_timeout):
                    await slots.acquire()
            except TimeoutError:
                await _send_problem(send, _busy(service, self.retry_after))
                return
        else:
            await slots.acquire()
        try:
            await self._exchange(
                session, service, method, scope, data, send, request_id, trace_context
            )
        finally:
            slots.release()

    async def _exchange(
        self,
        session: aiohttp.ClientSession,
        service: str,
        method: str,
        scope: Scope,
        data: bytes | None,
        send: Send,
        request_id: str,
        trace_context: Context | None,
    ) -> None:
        url = self.url_for(service, scope)
        if self.traced:
            headers = upstream_request_headers(scope, request_id, dropped=self._traced_dropped)
            inject_context(headers, trace_context)
        else:
            headers = upstream_request_headers(scope, request_id)
        attempts = 2 if data is None and method in IDEMPOTENT else 1
        response: aiohttp.ClientResponse | None = None
        error: ProblemError = BadGateway()
        for attempt in range(attempts):
            try:
                response = await session.request(
                    method,
                    url,
                    headers=headers,
                    data=data,
                    allow_redirects=False,
                    compress=False,
                )
                break
            except (aiohttp.ClientError, TimeoutError) as exc:
                if (
                    attempt + 1 < attempts
                    and isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError)
                    and not isinstance(exc, aiohttp.ClientConnectorError)
                ):
                    # A pooled connection the upstream closed while idle: retry once on a
                    # fresh one (only for idempotent requests without a body).
                    continue
                error = self._classify(service, exc)
                break
        if response is None:
            await _send_problem(send, error)
            return
        try:
            await self._relay(response, method, send)
        finally:
            response.release()

    def _classify(self, service: str, exc: BaseException) -> ProblemError:
        """What the client is told when the upstream could not be asked or did not answer."""
        if isinstance(exc, aiohttp.ConnectionTimeoutError | aiohttp.ClientConnectorError):
            return _unavailable(service, "connect", self.retry_after)
        if isinstance(exc, TimeoutError):  # aiohttp's SocketTimeoutError included
            UPSTREAM_ERRORS.labels(service, "timeout").inc()
            return GatewayTimeout(f"the {service} service did not answer in time")
        UPSTREAM_ERRORS.labels(service, "bad_response").inc()
        logger.warning("upstream failed", extra={"service": service, "error": repr(exc)})
        if isinstance(exc, aiohttp.ServerDisconnectedError):
            return BadGateway(f"the {service} service closed the connection")
        return BadGateway(f"the {service} service answered with something that is not HTTP")

    async def _relay(self, response: aiohttp.ClientResponse, method: str, send: Send) -> None:
        headers = response_headers(response.raw_headers)
        status = response.status
        if method == "HEAD" or status in NO_BODY_STATUSES:
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        length = response.content_length
        if length is not None and length <= SMALL_BODY:
            try:
                payload = await response.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                # Nothing sent yet: the client still gets a proper answer.
                UPSTREAM_ERRORS.labels("upstream", "broken_body").inc()
                logger.warning("upstream body failed", extra={"error": repr(exc)})
                timeout = isinstance(exc, TimeoutError)
                problem = (
                    GatewayTimeout("the upstream did not finish its answer in time")
                    if timeout
                    else BadGateway("the upstream broke off its answer")
                )
                await _send_problem(send, problem)
                return
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": payload})
            return
        await send({"type": "http.response.start", "status": status, "headers": headers})
        try:
            async for chunk in response.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except (aiohttp.ClientError, TimeoutError) as exc:
            # The status line is gone already: all that is left is to cut the connection,
            # so the client sees a truncated body rather than a complete-looking one.
            UPSTREAM_ERRORS.labels("upstream", "broken_body").inc()
            logger.warning("upstream body broke off", extra={"error": repr(exc)})
            raise
        await send({"type": "http.response.body", "body": b""})


def _quote_path(path: str) -> str:
    return quote(path, safe="/:@!$&'()*+,;=-._~")


def _unavailable(service: str, kind: str, retry_after: int) -> ServiceUnavailable:
    UPSTREAM_ERRORS.labels(service, kind).inc()
    return ServiceUnavailable(f"the {service} service cannot be reached", retry_after=retry_after)


def _busy(service: str, retry_after: int) -> ServiceUnavailable:
    UPSTREAM_ERRORS.labels(service, "pool_busy").inc()
    return ServiceUnavailable(
        f"the {service} service is busy: no upstream connection came free in time",
        retry_after=retry_after,
    )


def _body_timeout(seconds: float) -> RequestTimeout:
    return RequestTimeout(f"the request body did not arrive within {seconds:g} seconds")


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"the request body is larger than {limit} bytes")


def _bad_length() -> ProblemError:
    return BadRequest("the Content-Length header is malformed")


async def _send_problem(send: Send, error: ProblemError) -> None:
    response = error.to_response()
    headers: list[tuple[bytes, bytes]] = list(response.raw_headers)
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})
