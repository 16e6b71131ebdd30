"""FastAPI dependencies: the bearer token from the ``Authorization`` header only, and scopes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from momentum_shared.errors import InsufficientScope, ServiceUnavailable, Unauthorized
from momentum_shared.security.tokens import Claims, InvalidToken, KeysUnavailable, TokenVerifier


def bearer_token(authorization: str | None) -> str | None:
    """The token of a ``Bearer`` Authorization header, or ``None``."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    return token or None


async def current_claims(request: Request) -> Claims:
    """The verified claims of the request's bearer token (never from the query string)."""
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        raise Unauthorized("a bearer token is required", error=None)
    verifier: TokenVerifier = request.app.state.verifier
    try:
        return await verifier.verify(token)
    except KeysUnavailable as exc:
        raise ServiceUnavailable(str(exc)) from None
    except InvalidToken as exc:
        raise Unauthorized(str(exc)) from None


CurrentClaims = Annotated[Claims, Depends(current_claims)]


class RequireScope:
    """``Annotated[Claims, Depends(RequireScope("tasks:read"))]``: 403 without the scope."""

    def __init__(self, scope: str) -> None:
        self.scope = scope

    async def __call__(self, claims: CurrentClaims) -> Claims:
        if not claims.has_scope(self.scope):
            raise InsufficientScope(self.scope)
        return claims
