"""Building a verifier from a service's settings."""

from __future__ import annotations

import httpx

from momentum_shared.security.jwks import JwksCache
from momentum_shared.security.tokens import TokenVerifier
from momentum_shared.settings import TokenVerificationSettings


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
