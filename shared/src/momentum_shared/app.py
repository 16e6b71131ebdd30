"""The common skeleton of every Momentum FastAPI app: errors, request ids, metrics, health."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI

from momentum_shared.bodies import BodyLimitMiddleware
from momentum_shared.errors import install_error_handlers
from momentum_shared.health import Readiness, health_router
from momentum_shared.metrics import MetricsMiddleware, metrics_router, with_internal_port
from momentum_shared.openapi import install_openapi
from momentum_shared.requestid import RequestIdMiddleware
from momentum_shared.state import SharedState, install_shared_state
from momentum_shared.tracing import configure_tracing, server_telemetry

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def build_app(
    *,
    service: str,
    title: str,
    version: str,
    lifespan: Lifespan,
    description: str = "",
    internal_port: tuple[str, int] | None = None,
    limit_bodies: bool = True,
) -> FastAPI:
    """A FastAPI app with the house middleware, error handlers and probes installed.

    With ``internal_port`` (host, port), ``/metrics`` and the detailed ``/readyz`` are served
    there only, and the app's own ``/readyz`` says just ready or not. ``limit_bodies=False``
    leaves request bodies to the app (the gateway bounds them while it proxies them).
    """
    if internal_port is not None:
        lifespan = with_internal_port(lifespan, host=internal_port[0], port=internal_port[1])
    # Before the app: its server spans are FastAPI's own when tracing is on (OTEL_TRACES_EXPORTER
    # set), started outside every middleware below.
    configure_tracing(service)
    app = FastAPI(
        title=title,
        version=version,
        description=description,
        lifespan=lifespan,
        telemetry=server_telemetry(),
    )
    shared = install_shared_state(app, SharedState(service=service, readiness=Readiness()))
    install_error_handlers(app)
    install_openapi(app)
    app.include_router(health_router(detailed=internal_port is None))
    if internal_port is None:
        app.include_router(metrics_router())
    if limit_bodies:
        # The limit comes from the shared state's settings, which every factory sets after this.
        app.add_middleware(BodyLimitMiddleware, state=shared)
    # Added last so it runs first: metrics see the final status, every response gets an id.
    app.add_middleware(MetricsMiddleware, service=service)
    app.add_middleware(RequestIdMiddleware)
    return app
