"""The analytics service's FastAPI app: ``create_app()`` and its lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from importlib.metadata import version

import httpx
from fastapi import FastAPI

from momentum_analytics.consumer import DEAD_LETTERS_STORED, EventConsumer
from momentum_analytics.repository import AnalyticsRepository
from momentum_analytics.routes import router
from momentum_analytics.settings import AnalyticsSettings
from momentum_shared.app import build_app
from momentum_shared.db import UnitOfWork, check_database, create_engine, create_session_factory
from momentum_shared.events import utcnow
from momentum_shared.logs import configure_logging
from momentum_shared.security import following_revocations, running_verifier

logger = logging.getLogger("momentum.analytics")


async def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is None:
        return
    # Cancel until it is done: asyncio.wait_for inside a library may swallow one cancel.
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)
    if not task.cancelled() and task.exception() is not None:
        logger.error("background task failed", extra={"error": repr(task.exception())})


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: AnalyticsSettings = app.state.settings
    exit_stack = contextlib.AsyncExitStack()
    await exit_stack.enter_async_context(running_verifier(app, settings))
    await exit_stack.enter_async_context(following_revocations(app, settings, name="analytics"))
    engine = create_engine(settings.database_url, pool_size=settings.database_pool_size)
    app.state.engine = engine
    session_factory = create_session_factory(engine)
    app.state.session_factory = session_factory
    app.state.readiness.require("database", lambda: check_database(engine))
    consumer_task: asyncio.Task[None] | None = None
    if settings.consumer_enabled:
        with contextlib.suppress(Exception):  # a database that is down is /readyz's business
            async with UnitOfWork(session_factory) as uow:
                DEAD_LETTERS_STORED.set(await AnalyticsRepository(uow.session).count_dead_letters())
        consumer = EventConsumer(session_factory, settings, clock=app.state.clock)
        app.state.consumer = consumer
        app.state.readiness.inform("nats", consumer.status)
        consumer_task = asyncio.create_task(consumer.run(), name="analytics-consumer")
    try:
        yield
    finally:
        await _cancel(consumer_task)
        await exit_stack.aclose()
        await engine.dispose()


def create_app(
    settings: AnalyticsSettings | None = None,
    *,
    jwks_client: httpx.AsyncClient | None = None,
    clock: Callable[[], datetime] | None = None,
) -> FastAPI:
    """Build the analytics app; uvicorn calls this with ``--factory``.

    ``clock`` gives "now" (and so each caller's "today"); tests pass a fixed one.
    """
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
    app.state.jwks_client = jwks_client
    app.state.clock = clock or utcnow
    app.include_router(router)
    return app
