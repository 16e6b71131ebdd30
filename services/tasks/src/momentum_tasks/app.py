"""The tasks service's FastAPI app: ``create_app()`` and its lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from importlib.metadata import version

import httpx
from fastapi import FastAPI

from momentum_shared.app import build_app
from momentum_shared.db import (
    UnitOfWork,
    check_database,
    create_engine,
    create_session_factory,
)
from momentum_shared.events import TASK_STREAM, utcnow
from momentum_shared.logs import configure_logging
from momentum_shared.outbox import OutboxRelay
from momentum_shared.security.revocation import following_revocations
from momentum_shared.security.setup import running_verifier
from momentum_tasks.pagination import CursorCodec
from momentum_tasks.repository import TaskRepository
from momentum_tasks.routes import router
from momentum_tasks.settings import TasksSettings

logger = logging.getLogger("momentum.tasks")


def build_relay(settings: TasksSettings, app: FastAPI) -> OutboxRelay:
    return OutboxRelay(
        app.state.session_factory,
        nats_url=settings.nats_url,
        service="tasks",
        streams=[TASK_STREAM],
        batch_size=settings.outbox_batch_size,
        poll_interval=settings.outbox_poll_interval,
        retention=timedelta(hours=settings.outbox_retention_hours),
        connect_timeout=settings.nats_connect_timeout,
        stream_replicas=settings.nats_stream_replicas,
        nats_auth=settings.nats_auth,
    )


async def purge_idempotency_keys_forever(app: FastAPI, *, interval: float) -> None:
    """Hourly housekeeping: keys past their 24 hours go (any replica may run it)."""
    settings: TasksSettings = app.state.settings
    while True:
        await asyncio.sleep(interval)
        try:
            async with UnitOfWork(app.state.session_factory) as uow:
                cutoff = utcnow() - timedelta(seconds=settings.idempotency_ttl_seconds)
                await TaskRepository(uow.session).purge_idempotency_keys(expired_before=cutoff)
        except Exception:
            logger.warning("could not purge idempotency keys", exc_info=True)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: TasksSettings = app.state.settings
    exit_stack = contextlib.AsyncExitStack()
    await exit_stack.enter_async_context(running_verifier(app, settings))
    await exit_stack.enter_async_context(following_revocations(app, settings, name="tasks"))
    engine = create_engine(settings.database_url, pool_size=settings.database_pool_size)
    app.state.engine = engine
    app.state.session_factory = create_session_factory(engine)
    app.state.readiness.require("database", lambda: check_database(engine))
    relay: OutboxRelay | None = None
    background: list[asyncio.Task[None]] = [
        asyncio.create_task(
            purge_idempotency_keys_forever(app, interval=3600.0), name="tasks-key-purge"
        )
    ]
    if settings.outbox_relay_enabled:
        # NATS being down never makes the service unready: writes wait in the outbox.
        relay = build_relay(settings, app)
        app.state.relay = relay
        app.state.readiness.inform("nats", relay.status)
        background.append(asyncio.create_task(relay.run(), name="tasks-outbox-relay"))
    try:
        yield
    finally:
        for task in background:
            task.cancel()
        for task in background:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if relay is not None:
            await relay.aclose()
        await exit_stack.aclose()
        await engine.dispose()


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
    app.state.settings = settings
    app.state.jwks_client = jwks_client
    app.state.cursor_codec = CursorCodec(settings.cursor_secret.get_secret_value().encode())
    app.include_router(router)
    return app
