"""The analytics service's FastAPI app: ``create_app()`` and its lifespan."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from importlib.metadata import version

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from momentum_analytics.consumer import DEAD_LETTERS_STORED, EventConsumer
from momentum_analytics.models import AnalyticsBase, ProcessedEvent
from momentum_analytics.repository import AnalyticsRepository
from momentum_analytics.routes import router
from momentum_analytics.settings import AnalyticsSettings
from momentum_analytics.state import AnalyticsState, app_state
from momentum_shared.app import build_app
from momentum_shared.db import UnitOfWork
from momentum_shared.events import utcnow
from momentum_shared.lifespan import service_lifespan
from momentum_shared.logs import configure_logging
from momentum_shared.pruning import Pruner, PruneTarget
from momentum_shared.security import following_revocations, running_verifier
from momentum_shared.state import install_state, shared_state


def pruner(
    session_factory: async_sessionmaker[AsyncSession],
    settings: AnalyticsSettings,
    *,
    clock: Callable[[], datetime] = utcnow,
) -> Pruner:
    """The prune job of analytics: inbox ids processed longer than the inbox retention ago
    (docs/spec/analytics.md §2), one replica at a time (``momentum_shared.pruning``)."""
    inbox = AnalyticsBase.metadata.tables[ProcessedEvent.__tablename__]
    retention = timedelta(seconds=settings.inbox_retention_seconds)
    return Pruner(
        session_factory,
        [PruneTarget(inbox, lambda now: inbox.c.processed_at < now - retention)],
        service="analytics",
        batch_size=settings.prune_batch_size,
        time_budget_seconds=settings.prune_time_budget_seconds,
        clock=clock,
    )


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    state = app_state(app)
    settings = state.settings
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(running_verifier(app, settings))
        await stack.enter_async_context(following_revocations(app, settings, name="analytics"))
        runtime = await stack.enter_async_context(
            service_lifespan(app, settings, service="analytics")
        )
        state.attach(runtime)
        session_factory = runtime.session_factory
        if settings.consumer_enabled:
            with contextlib.suppress(Exception):  # a database that is down is /readyz's business
                async with UnitOfWork(session_factory) as uow:
                    DEAD_LETTERS_STORED.set(
                        await AnalyticsRepository(uow.session).count_dead_letters()
                    )
            consumer = EventConsumer(session_factory, settings, clock=state.clock)
            state.consumer = consumer
            runtime.start("consumer", consumer, inform="nats")
        runtime.start(
            "prune",
            pruner(session_factory, settings, clock=state.clock).job(
                interval_seconds=settings.prune_interval_seconds
            ),
        )
        yield


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
    install_state(app, AnalyticsState(settings=settings, clock=clock or utcnow))
    shared_state(app).jwks_client = jwks_client  # read by the shared verifier set-up
    app.include_router(router)
    return app
