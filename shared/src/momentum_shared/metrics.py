"""Prometheus metrics: request count and latency by route template and status, plus /metrics.

``/metrics`` and the detailed ``/readyz`` are served either on the app itself or, for an app
on a public port, by a second small server on an internal port (``with_internal_port``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import uvicorn
from fastapi import APIRouter, FastAPI, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from momentum_shared.health import Readiness, health_router
from momentum_shared.state import SharedState, install_shared_state, shared_state

logger = logging.getLogger("momentum.metrics")

# One registry per process: the metrics of every module register here.
REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter(
    "momentum_http_requests_total",
    "HTTP requests by route template, method and status",
    ["service", "method", "route", "status"],
    registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    "momentum_http_request_duration_seconds",
    "HTTP request latency by route template and method",
    ["service", "method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
NATS_CONNECTED = Gauge(
    "momentum_nats_connected",
    "1 when the service's NATS connection is up",
    ["service"],
    registry=REGISTRY,
)


def route_template(scope: Scope) -> str:
    """The matched route's path template, so label cardinality stays bounded."""
    app = scope.get("app")
    router = getattr(app, "router", None)
    if router is None:
        return "unmatched"
    for route in router.routes:
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return str(getattr(route, "path", "unmatched"))
    return "unmatched"


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, *, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_capturing(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_capturing)
        finally:
            route = scope.get("route")
            template = str(getattr(route, "path", "")) or route_template(scope)
            method = str(scope.get("method", "GET"))
            HTTP_REQUESTS.labels(self.service, method, template, str(status)).inc()
            HTTP_LATENCY.labels(self.service, method, template).observe(time.perf_counter() - start)


def metrics_router() -> APIRouter:
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        """Prometheus text exposition."""
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return router


def internal_app(readiness: Readiness) -> FastAPI:
    """``/metrics``, ``/healthz`` and the detailed ``/readyz``, for a service's internal port."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    install_shared_state(app, SharedState(service="internal", readiness=readiness))
    app.include_router(health_router())
    app.include_router(metrics_router())
    return app


@contextlib.asynccontextmanager
async def serving_internal(app: ASGIApp, *, host: str, port: int) -> AsyncIterator[str]:
    """Serve ``app`` on ``host:port`` in the running loop; yields its URL (port 0: any free one).

    The uvicorn server is started and stopped by hand rather than with ``serve()``, which
    would take the process's signal handlers from the server of the app itself.
    """
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="off",
        access_log=False,
        log_config=None,
        proxy_headers=False,
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    config.load()
    server.lifespan = config.lifespan_class(config)
    await server.startup()
    bound = server.servers[0].sockets[0].getsockname()
    url = f"http://{host}:{bound[1]}"
    logger.info("metrics and readiness details on %s", url)
    ticking = asyncio.create_task(server.main_loop())
    try:
        yield url
    finally:
        server.should_exit = True
        await ticking
        await server.shutdown()


Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def with_internal_port(lifespan: Lifespan, *, host: str, port: int) -> Lifespan:
    """``lifespan``, with the app's ``internal_app`` served on ``host:port`` around it.

    The URL it is served on is ``shared_state(app).internal_url``.
    """

    @contextlib.asynccontextmanager
    async def wrapped(app: FastAPI) -> AsyncIterator[None]:
        shared = shared_state(app)
        internal = internal_app(shared.readiness)
        async with serving_internal(internal, host=host, port=port) as url:
            shared.internal_url = url
            async with lifespan(app):
                yield

    return wrapped
