"""The auth service's FastAPI app: ``create_app()`` and its lifespan."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version

import httpx
from fastapi import FastAPI

from momentum_auth.context import AuthContext
from momentum_auth.models import OUTBOX
from momentum_auth.openapi import document_auth
from momentum_auth.passwords import PasswordHasher
from momentum_auth.pruning import pruner
from momentum_auth.publishing import STREAMS
from momentum_auth.routes import router
from momentum_auth.settings import AuthSettings
from momentum_auth.signing_keys.crypto import ALGORITHM, KeyEncryption, PrivateKeys
from momentum_auth.signing_keys.rotation import check_signing_key
from momentum_auth.signing_keys.transport import DatabaseJwksTransport
from momentum_auth.state import AuthState, app_state
from momentum_auth.upkeep import upkeep_job
from momentum_shared.app import build_app
from momentum_shared.lifespan import service_lifespan
from momentum_shared.logs import configure_logging
from momentum_shared.outbox import OutboxRelay, RelaySettings
from momentum_shared.security import JwksCache, TokenVerifier
from momentum_shared.state import install_state, shared_state

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


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    state = app_state(app)
    settings, context = state.settings, state.auth
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(context.hasher.close)
        # momentum_shared's engine hides bound parameters (password hashes, sealed keys).
        runtime = await stack.enter_async_context(service_lifespan(app, settings, service="auth"))
        state.attach(runtime)
        session_factory = runtime.session_factory
        jwks_client = httpx.AsyncClient(transport=DatabaseJwksTransport(session_factory))
        stack.push_async_callback(jwks_client.aclose)
        context.verifier = build_self_verifier(settings, jwks_client)
        shared_state(app).verifier = context.verifier
        stack.push_async_callback(context.verifier.jwks.aclose)
        context.keys.on_first_use = context.verifier.jwks.expect

        runtime.readiness.require(
            "signing_key", lambda: check_signing_key(session_factory, context.keys)
        )
        upkeep = upkeep_job(session_factory, context)
        # The first key exists before the first request, so the first JWKS is never empty.
        await upkeep.run_once()
        runtime.start("signing-key-upkeep", upkeep)
        runtime.start(
            "prune",
            pruner(session_factory, settings).job(interval_seconds=settings.prune_interval_seconds),
        )
        if settings.outbox_relay_enabled:
            relay = OutboxRelay(
                session_factory,
                OUTBOX,
                service="auth",
                streams=STREAMS,
                settings=RelaySettings.of(settings),
            )
            state.relay = relay
            runtime.start("outbox-relay", relay, inform="nats")
        yield


def create_app(settings: AuthSettings | None = None) -> FastAPI:
    """Build the auth app; uvicorn calls this with ``--factory``.

    Auth reads its keys from its own database, so unlike the other services it takes no
    JWKS client.
    """
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
    install_state(app, AuthState(settings=settings, auth=build_context(settings)))
    app.include_router(router)
    document_auth(app)
    return app
