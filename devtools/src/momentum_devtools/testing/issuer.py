"""A test token issuer: a real RSA key, real RS256 tokens, and its JWKS over httpx."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

ALL_SCOPES = "profile tasks:read tasks:write analytics:read"


class TestIssuer:
    """Signs access tokens shaped like auth's, and serves the matching JWKS."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        *,
        issuer: str = "http://127.0.0.1:8000",
        audience: str = "momentum-api",
        kid: str = "test-key-1",
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.kid = kid
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.jwks_requests = 0

    def jwks(self) -> dict[str, Any]:
        jwk: dict[str, Any] = RSAAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        jwk.update(kid=self.kid, alg="RS256", use="sig")
        return {"keys": [jwk]}

    def transport(self) -> httpx.MockTransport:
        """An httpx transport answering the JWKS URL with this issuer's keys."""

        def handler(request: httpx.Request) -> httpx.Response:
            self.jwks_requests += 1
            if request.url.path.endswith("/jwks.json"):
                return httpx.Response(200, json=self.jwks())
            return httpx.Response(404)

        return httpx.MockTransport(handler)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self.transport())

    def mint(
        self,
        sub: uuid.UUID | str | None = None,
        *,
        scope: str = ALL_SCOPES,
        tz: str = "UTC",
        lifetime: int = 900,
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "sub": str(sub or uuid.uuid4()),
            "aud": self.audience,
            "iat": now,
            "exp": now + lifetime,
            "jti": str(uuid.uuid4()),
            "client_id": "momentum-test",
            "scope": scope,
            "sid": str(uuid.uuid4()),
            "tz": tz,
        }
        payload.update(claims)
        header = {"typ": "at+jwt", "kid": self.kid, **(headers or {})}
        return jwt.encode(payload, self.private_key, algorithm="RS256", headers=header)

    def bearer(self, sub: uuid.UUID | str | None = None, **kwargs: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.mint(sub, **kwargs)}"}
