"""The tasks service's FastAPI app: ``create_app()`` and its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version

from fastapi import FastAPI

from momentum_shared.app import build_app
from momentum_shared.db import check_database, create_engine, create_session_factory
from momentum_shared.logs import configure_logging
from momentum_tasks.routes import router
from momentum_tasks.settings import TasksSettings


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: TasksSettings = app.state.settings
    engine = create_engine(settings.database_url, pool_size=settings.database_pool_size)
    app.state.engine = engine
    app.state.session_factory = create_session_factory(engine)
    app.state.readiness.require("database", lambda: check_database(engine))
    try:
        yield
    finally:
        await engine.dispose()


def create_app(settings: TasksSettings | None = None) -> FastAPI:
    """Build the tasks app; uvicorn calls this with ``--factory``."""
    settings = settings or TasksSettings()
    configure_logging("tasks", level=settings.log_level, json_output=settings.log_json)
    app = build_app(
        service="tasks",
        title="Momentum Tasks",
        version=version("momentum-tasks"),
        description="User-scoped tasks with a transactional outbox.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.include_router(router)
    return app
