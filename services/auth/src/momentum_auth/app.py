"""The auth service's FastAPI app: ``create_app()`` and its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version

from fastapi import FastAPI

from momentum_auth.routes import router
from momentum_auth.settings import AuthSettings
from momentum_shared.app import build_app
from momentum_shared.db import check_database, create_engine, create_session_factory
from momentum_shared.logs import configure_logging


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: AuthSettings = app.state.settings
    engine = create_engine(settings.database_url, pool_size=settings.database_pool_size)
    app.state.engine = engine
    app.state.session_factory = create_session_factory(engine)
    app.state.readiness.require("database", lambda: check_database(engine))
    try:
        yield
    finally:
        await engine.dispose()


def create_app(settings: AuthSettings | None = None) -> FastAPI:
    """Build the auth app; uvicorn calls this with ``--factory``."""
    settings = settings or AuthSettings()
    configure_logging("auth", level=settings.log_level, json_output=settings.log_json)
    app = build_app(
        service="auth",
        title="Momentum Auth",
        version=version("momentum-auth"),
        description="Users, tokens, signing keys and refresh-token families.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.include_router(router)
    return app
