"""The analytics service's FastAPI app: ``create_app()`` and its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version

from fastapi import FastAPI

from momentum_analytics.routes import router
from momentum_analytics.settings import AnalyticsSettings
from momentum_shared.app import build_app
from momentum_shared.db import check_database, create_engine, create_session_factory
from momentum_shared.logs import configure_logging


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: AnalyticsSettings = app.state.settings
    engine = create_engine(settings.database_url, pool_size=settings.database_pool_size)
    app.state.engine = engine
    app.state.session_factory = create_session_factory(engine)
    app.state.readiness.require("database", lambda: check_database(engine))
    try:
        yield
    finally:
        await engine.dispose()


def create_app(settings: AnalyticsSettings | None = None) -> FastAPI:
    """Build the analytics app; uvicorn calls this with ``--factory``."""
    settings = settings or AnalyticsSettings()
    configure_logging("analytics", level=settings.log_level, json_output=settings.log_json)
    app = build_app(
        service="analytics",
        title="Momentum Analytics",
        version=version("momentum-analytics"),
        description="Streaks and weekly reports from consumed events.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.include_router(router)
    return app
