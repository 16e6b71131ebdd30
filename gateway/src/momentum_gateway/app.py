"""The gateway's FastAPI app: ``create_app()`` and its lifespan."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from typing import cast

import httpx
from fastapi import FastAPI
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from momentum_gateway.endpoints import router
from momentum_gateway.openapi import OpenApiAggregator
from momentum_gateway.pipeline import Gateway, GatewayMiddleware
from momentum_gateway.proxy import UpstreamProxy
from momentum_gateway.settings import GatewaySettings
from momentum_gateway.state import GatewayState, gateway_state, install_gateway_state
from momentum_shared.app import build_app
from momentum_shared.logs import configure_logging
from momentum_shared.security import following_revocations, running_verifier
from momentum_shared.state import shared_state

TITLE = "Momentum"
DESCRIPTION = "The Momentum API: the only public entry to auth, tasks and analytics."


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = cast(GatewaySettings, shared_state(app).settings)
    state = gateway_state(app)
    gateway = state.gateway
    exit_stack = contextlib.AsyncExitStack()
    gateway.verifier = await exit_stack.enter_async_context(running_verifier(app, settings))

    proxy = UpstreamProxy(settings)
    await proxy.start()
    gateway.proxy = proxy

    await exit_stack.enter_async_context(
        following_revocations(app, settings, name="gateway", revocations=gateway.revocations)
    )

    aggregator = OpenApiAggregator(
        settings.upstreams(),
        gateway.table,
        ttl=settings.openapi_cache_seconds,
        title=TITLE,
        version=app.version,
        description=DESCRIPTION,
    )
    state.openapi = aggregator
    try:
        yield
    finally:
        gateway.proxy = None
        await proxy.aclose()
        await aggregator.aclose()
        await exit_stack.aclose()


def _without_path(routes: list[BaseRoute], path: str) -> list[BaseRoute]:
    return [r for r in routes if getattr(r, "path", None) != path]


def create_app(
    settings: GatewaySettings | None = None, *, jwks_client: httpx.AsyncClient | None = None
) -> FastAPI:
    """Build the gateway app; uvicorn calls this with ``--factory``."""
    settings = settings or GatewaySettings()
    configure_logging("gateway", level=settings.log_level, json_output=settings.log_json)
    app = build_app(
        service="gateway",
        title=TITLE,
        version=version("momentum-gateway"),
        description=DESCRIPTION,
        lifespan=lifespan,
        # The gateway is the public entry: its metrics and readiness details stay internal.
        internal_port=(settings.metrics_host, settings.metrics_port),
        limit_bodies=False,
    )
    # FastAPI's own /openapi.json would describe only the gateway's probes: the merged
    # document replaces it, and /docs (FastAPI's Swagger UI) renders that one.
    app.router.routes[:] = _without_path(app.router.routes, "/openapi.json")
    app.include_router(router)
    gateway = Gateway(settings)
    shared = shared_state(app)
    shared.settings = settings
    shared.jwks_client = jwks_client
    install_gateway_state(app, GatewayState(gateway=gateway))
    # Innermost of the house middleware: request ids and metrics wrap proxied requests too,
    # and FastAPI's router only sees the gateway's own paths.
    app.user_middleware.append(Middleware(GatewayMiddleware, gateway=gateway))
    return app
