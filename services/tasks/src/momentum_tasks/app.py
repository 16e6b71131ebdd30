"""The tasks service's FastAPI app: ``create_app()`` and its lifespan."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from importlib.metadata import version

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from momentum_shared.app import build_app
from momentum_shared.db import UnitOfWork
from momentum_shared.events import utcnow
from momentum_shared.lifespan import PeriodicJob, service_lifespan
from momentum_shared.logs import configure_logging
from momentum_shared.outbox import OutboxRelay, RelaySettings, published_rows
from momentum_shared.pruning import Pruner
from momentum_shared.security.revocation import following_revocations
from momentum_shared.security.setup import running_verifier
from momentum_shared.state import install_state, shared_state
from momentum_tasks.models import OUTBOX
from momentum_tasks.pagination import CursorCodec
from momentum_tasks.publishing import STREAMS
from momentum_tasks.repository import TaskRepository
from momentum_tasks.routes import router
from momentum_tasks.settings import TasksSettings
from momentum_tasks.state import TasksState, app_state

IDEMPOTENCY_KEY_PURGE_INTERVAL_SECONDS = 3600.0
TOMBSTONE_PRUNE_INTERVAL_SECONDS = 3600.0


async def purge_expired_idempotency_keys(
    session_factory: async_sessionmaker[AsyncSession], settings: TasksSettings
) -> int:
    """Delete the keys past their TTL (any replica may run it); how many went."""
    async with UnitOfWork(session_factory) as uow:
        cutoff = utcnow() - timedelta(seconds=settings.idempotency_ttl_seconds)
        return await TaskRepository(uow.session).purge_idempotency_keys(expired_before=cutoff)


async def prune_tombstones(
    session_factory: async_sessionmaker[AsyncSession],
    settings: TasksSettings,
    *,
    now: datetime | None = None,
) -> int:
    """Delete the changes feed's tombstones past their retention (any replica may run it)."""
    async with UnitOfWork(session_factory) as uow:
        cutoff = (now or utcnow()) - timedelta(seconds=settings.tombstone_retention_seconds)
        return await TaskRepository(uow.session).prune_tombstones(deleted_before=cutoff)


def pruner(session_factory: async_sessionmaker[AsyncSession], settings: TasksSettings) -> Pruner:
    """The prune job of tasks: published outbox rows past their retention, one replica at a
    time (``momentum_shared.pruning``)."""
    return Pruner(
        session_factory,
        [published_rows(OUTBOX, "tasks", settings.outbox_retention_seconds)],
        service="tasks",
        batch_size=settings.prune_batch_size,
        time_budget_seconds=settings.prune_time_budget_seconds,
    )


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    state = app_state(app)
    settings = state.settings
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(running_verifier(app, settings))
        await stack.enter_async_context(following_revocations(app, settings, name="tasks"))
        runtime = await stack.enter_async_context(service_lifespan(app, settings, service="tasks"))
        state.attach(runtime)
        session_factory = runtime.session_factory
        runtime.start(
            "idempotency-key-purge",
            PeriodicJob(
                "idempotency-key-purge",
                lambda: purge_expired_idempotency_keys(session_factory, settings),
                interval_seconds=IDEMPOTENCY_KEY_PURGE_INTERVAL_SECONDS,
            ),
        )
        runtime.start(
            "tombstone-prune",
            PeriodicJob(
                "tombstone-prune",
                lambda: prune_tombstones(session_factory, settings),
                interval_seconds=TOMBSTONE_PRUNE_INTERVAL_SECONDS,
            ),
        )
        runtime.start(
            "prune",
            pruner(session_factory, settings).job(interval_seconds=settings.prune_interval_seconds),
        )
        if settings.outbox_relay_enabled:
            relay = OutboxRelay(
                session_factory,
                OUTBOX,
                service="tasks",
                streams=STREAMS,
                settings=RelaySettings.of(settings),
            )
            state.relay = relay
            # NATS being down never makes the service unready: writes wait in the outbox.
            runtime.start("outbox-relay", relay, inform="nats")
        yield


def create_app(
    settings: TasksSettings | None = None, *, jwks_client: httpx.AsyncClient | None = None
) -> FastAPI:
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
    codec = CursorCodec(settings.cursor_secret.get_secret_value().encode())
    install_state(app, TasksState(settings=settings, cursor_codec=codec))
    shared_state(app).jwks_client = jwks_client  # read by the shared verifier set-up
    app.include_router(router)
    return app
