"""Access tokens (RFC 9068 ``at+jwt``, RS256) and opaque refresh tokens."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from momentum_auth.signing_keys.crypto import ALGORITHM

ACCESS_TOKEN_TYPE = "at+jwt"
# 32 bytes = 256 bits of randomness, the minimum of docs/spec/auth.md §1.2.
REFRESH_TOKEN_BYTES = 32


@dataclass(frozen=True, slots=True)
class AccessToken:
    token: str
    expires_at: datetime
    lifetime: int


def access_token_expiry(now: datetime, lifetime: int) -> datetime:
    """When a token minted at ``now`` expires: ``exp`` is whole seconds."""
    return now.replace(microsecond=0) + timedelta(seconds=lifetime)


def mint_access_token(
    *,
    private_key: rsa.RSAPrivateKey,
    kid: str,
    issuer: str,
    audience: str,
    user_id: uuid.UUID,
    client_id: str,
    scope: str,
    session_id: uuid.UUID,
    timezone: str,
    now: datetime,
    lifetime: int,
) -> AccessToken:
    issued_at = int(now.timestamp())
    expires_at = issued_at + lifetime
    claims = {
        "iss": issuer,
        "sub": str(user_id),
        "aud": audience,
        "exp": expires_at,
        "iat": issued_at,
        "jti": str(uuid.uuid4()),
        "client_id": client_id,
        "scope": scope,
        "sid": str(session_id),
        "tz": timezone,
    }
    token = jwt.encode(
        claims, private_key, algorithm=ALGORITHM, headers={"typ": ACCESS_TOKEN_TYPE, "kid": kid}
    )
    return AccessToken(
        token=token, expires_at=access_token_expiry(now, lifetime), lifetime=lifetime
    )


def new_refresh_token() -> str:
    return secrets.token_urlsafe(REFRESH_TOKEN_BYTES)


def hash_refresh_token(token: str) -> str:
    """SHA-256 suffices: the token has 256 random bits, so there is nothing to brute-force."""
    return hashlib.sha256(token.encode()).hexdigest()
