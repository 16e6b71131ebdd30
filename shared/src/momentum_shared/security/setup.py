"""Building a verifier from a service's settings, and running it for an app's lifetime."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI

from momentum_shared.security.jwks import JwksCache
from momentum_shared.security.verification import TokenVerifier
from momentum_shared.settings import TokenVerificationSettings
from momentum_shared.state import shared_state


def build_verifier(
    settings: TokenVerificationSettings, *, client: httpx.AsyncClient | None = None
) -> TokenVerifier:
    """A verifier for auth's tokens; ``client`` lets tests serve the JWKS in-process."""
    jwks = JwksCache(
        settings.jwks_url,
        algorithms=settings.token_algorithms,
        ttl=settings.jwks_ttl_seconds,
        unknown_kid_cooldown=settings.jwks_unknown_kid_cooldown_seconds,
        client=client,
    )
    return TokenVerifier(
        jwks,
        issuer=settings.token_issuer,
        audience=settings.token_audience,
        algorithms=settings.token_algorithms,
        leeway=settings.token_leeway_seconds,
    )


@contextlib.asynccontextmanager
async def running_verifier(
    app: FastAPI, settings: TokenVerificationSettings
) -> AsyncIterator[TokenVerifier]:
    """Install the app's verifier, load the JWKS in the background, gate /readyz on it.

    No request can be authenticated before the keys are known, so every app that
    verifies tokens is unready until the first JWKS fetch succeeds.
    """
    shared = shared_state(app)
    verifier = build_verifier(settings, client=shared.jwks_client)
    shared.verifier = verifier
    shared.readiness.require("jwks", verifier.jwks.check_ready)
    loader = asyncio.create_task(verifier.jwks.load_until_ready(), name="jwks-loader")
    try:
        yield verifier
    finally:
        loader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loader
        await verifier.jwks.aclose()
