"""Bearer-token security shared by the gateway and every service."""

from momentum_shared.security.dependencies import (
    ClaimsDep,
    RequireScope,
    bearer_token,
    current_claims,
)
from momentum_shared.security.jwks import JwksCache
from momentum_shared.security.revocation import (
    RevocationList,
    RevocationListener,
    following_revocations,
)
from momentum_shared.security.setup import build_verifier, running_verifier
from momentum_shared.security.verification import (
    Claims,
    InvalidToken,
    KeysUnavailable,
    TokenVerifier,
)

__all__ = [
    "Claims",
    "ClaimsDep",
    "InvalidToken",
    "JwksCache",
    "KeysUnavailable",
    "RequireScope",
    "RevocationList",
    "RevocationListener",
    "TokenVerifier",
    "bearer_token",
    "build_verifier",
    "current_claims",
    "following_revocations",
    "running_verifier",
]
