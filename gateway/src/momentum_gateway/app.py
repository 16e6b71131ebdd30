"""The gateway's FastAPI app: ``create_app()`` and its lifespan."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version

import httpx
from fastapi import FastAPI

from momentum_gateway.settings import GatewaySettings
from momentum_shared.app import build_app
from momentum_shared.logs import configure_logging
from momentum_shared.security import build_verifier


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: GatewaySettings = app.state.settings
    verifier = build_verifier(settings, client=app.state.jwks_client)
    app.state.verifier = verifier
    jwks = verifier.jwks
    app.state.readiness.require("jwks", jwks.check_ready)
    loader = asyncio.create_task(jwks.load_until_ready())
    try:
        yield
    finally:
        loader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loader
        await jwks.aclose()


def create_app(
    settings: GatewaySettings | None = None, *, jwks_client: httpx.AsyncClient | None = None
) -> FastAPI:
    """Build the gateway app; uvicorn calls this with ``--factory``."""
    settings = settings or GatewaySettings()
    configure_logging("gateway", level=settings.log_level, json_output=settings.log_json)
    app = build_app(
        service="gateway",
        title="Momentum",
        version=version("momentum-gateway"),
        description="The Momentum API: the only public entry to auth, tasks and analytics.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.jwks_client = jwks_client
    return app
