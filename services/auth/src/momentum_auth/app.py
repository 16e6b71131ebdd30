"""The auth service's FastAPI app: ``create_app()`` and its lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from momentum_auth import repository, service
from momentum_auth.keys import ALGORITHM, DatabaseJwksTransport, KeyEncryption, PrivateKeys
from momentum_auth.openapi import document_auth
from momentum_auth.passwords import PasswordHasher
from momentum_auth.routes import router
from momentum_auth.service import AuthContext
from momentum_auth.settings import AuthSettings
from momentum_shared.app import build_app
from momentum_shared.db import UnitOfWork, check_database, create_engine, create_session_factory
from momentum_shared.events import AUTH_STREAM, utcnow
from momentum_shared.logs import configure_logging
from momentum_shared.outbox import OutboxRelay
from momentum_shared.security import JwksCache, TokenVerifier

logger = logging.getLogger("momentum.auth")

# Never resolved: the verifier's client answers it from the database in process.
SELF_JWKS_URL = "http://auth.momentum.internal/.well-known/jwks.json"


def build_context(settings: AuthSettings) -> AuthContext:
    encryption = KeyEncryption(
        settings.key_encryption_key.get_secret_value(),
        [secret.get_secret_value() for secret in settings.previous_key_encryption_keys],
    )
    hasher = PasswordHasher(
        memory_cost_kib=settings.password_memory_cost_kib,
        time_cost=settings.password_time_cost,
        parallelism=settings.password_parallelism,
        workers=settings.password_hashing_workers,
        queue_length=settings.password_hashing_queue_length,
    )
    return AuthContext(settings=settings, hasher=hasher, keys=PrivateKeys(encryption))


def build_self_verifier(settings: AuthSettings, client: httpx.AsyncClient) -> TokenVerifier:
    """The shared verifier with the same checks as every service, keys from the database."""
    jwks = JwksCache(
        SELF_JWKS_URL,
        algorithms=(ALGORITHM,),
        ttl=60.0,
        # As at the gateway: an unknown kid costs at most one query per cooldown, and is then
        # refused from the negative cache, so random kids cannot make auth reload its keys.
        # A key this replica starts signing with is announced to the cache (see lifespan).
        unknown_kid_cooldown=settings.jwks_unknown_kid_cooldown_seconds,
        client=client,
    )
    return TokenVerifier(
        jwks,
        issuer=settings.issuer,
        audience=settings.token_audience,
        algorithms=(ALGORITHM,),
        leeway=settings.token_leeway_seconds,
    )


async def maintain_keys(
    session_factory: async_sessionmaker[AsyncSession], context: AuthContext, *, ok: bool
) -> None:
    """Keep rotating and pruning keys on every replica, after the first upkeep at start."""
    interval = context.settings.key_maintenance_interval_seconds
    while True:
        # While the database is unusable /readyz says so; retry soon rather than at the interval.
        await asyncio.sleep(interval if ok else min(1.0, interval))
        ok = await maintain_once(session_factory, context)


async def maintain_once(
    session_factory: async_sessionmaker[AsyncSession], context: AuthContext
) -> bool:
    try:
        async with UnitOfWork(session_factory) as uow:
            await service.maintain(uow.session, context, now=utcnow())
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        logger.warning("signing-key upkeep failed", extra={"error": type(exc).__name__})
        return False
    return True


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: AuthSettings = app.state.settings
    # momentum_shared's engine hides bound parameters (password hashes, sealed keys).
    engine = create_engine(settings.database_url, pool_size=settings.database_pool_size)
    session_factory = create_session_factory(engine)
    app.state.engine = engine
    app.state.session_factory = session_factory
    context: AuthContext = app.state.auth
    jwks_client = httpx.AsyncClient(transport=DatabaseJwksTransport(session_factory))
    context.verifier = app.state.verifier = build_self_verifier(settings, jwks_client)
    context.keys.on_first_use = context.verifier.jwks.expect

    async def signing_key_ready() -> None:
        async with session_factory() as session:
            key = await repository.get_active_signing_key(session)
        if key is None:
            raise RuntimeError("no signing key yet")
        context.keys.private_key(key)  # raises when the key-encryption key is wrong

    app.state.readiness.require("database", lambda: check_database(engine))
    app.state.readiness.require("signing_key", signing_key_ready)
    # The first key exists before the first request, so the first JWKS is never empty.
    first_ok = await maintain_once(session_factory, context)
    tasks: list[asyncio.Task[Any]] = [
        asyncio.create_task(
            maintain_keys(session_factory, context, ok=first_ok), name="auth-key-upkeep"
        )
    ]
    relay: OutboxRelay | None = None
    if settings.outbox_relay_enabled:
        relay = OutboxRelay(
            session_factory,
            nats_url=settings.nats_url,
            service="auth",
            streams=[AUTH_STREAM],
            poll_interval=settings.outbox_poll_interval_seconds,
            connect_timeout=settings.nats_connect_timeout,
            stream_replicas=settings.nats_stream_replicas,
            nats_auth=settings.nats_auth,
        )
        app.state.relay = relay
        app.state.readiness.inform("nats", relay.status)
        tasks.append(asyncio.create_task(relay.run(), name="auth-outbox-relay"))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if relay is not None:
            await relay.aclose()
        context.hasher.close()
        await context.verifier.jwks.aclose()
        await jwks_client.aclose()
        await engine.dispose()


def create_app(
    settings: AuthSettings | None = None, *, jwks_client: httpx.AsyncClient | None = None
) -> FastAPI:
    """Build the auth app; uvicorn calls this with ``--factory``.

    ``jwks_client`` is accepted for the services' common factory signature; auth reads its
    keys from its own database and never fetches a JWKS.
    """
    del jwks_client
    settings = settings or AuthSettings()
    # Also keeps aiosqlite, which logs statements with their values at DEBUG, at INFO.
    configure_logging("auth", level=settings.log_level, json_output=settings.log_json)
    app = build_app(
        service="auth",
        title="Momentum Auth",
        version=version("momentum-auth"),
        description="Users, tokens, signing keys and refresh-token families.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.auth = build_context(settings)
    app.include_router(router)
    document_auth(app)
    return app
