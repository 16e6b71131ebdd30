"""FastAPI dependencies: the bearer token from the ``Authorization`` header only, and scopes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from momentum_shared.errors import InsufficientScope, ServiceUnavailable, Unauthorized
from momentum_shared.security.verification import (
    Claims,
    InvalidToken,
    KeysUnavailable,
)
from momentum_shared.state import request_shared_state


def bearer_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The token of the one ``Authorization: Bearer`` header of raw ASGI headers, or ``None``.

    Never from the query string or a form. Two Authorization headers count as none: which
    one another hop would read is anybody's guess. The gateway's hot path and every
    service's dependency use this one function, so both refuse the same requests.
    """
    found: bytes | None = None
    for name, value in headers:
        if name == b"authorization":
            if found is not None:
                return None
            found = value
    if found is None:
        return None
    scheme, _, token = found.partition(b" ")
    if scheme.lower() != b"bearer":
        return None
    token = token.strip()
    if not token:
        return None
    try:
        return token.decode("ascii")
    except UnicodeDecodeError:
        return None


# Where ``BearerFirstRoute`` keeps the claims it verified before the body was read.
CLAIMS_SCOPE_KEY = "momentum.claims"


async def current_claims(request: Request) -> Claims:
    """The verified claims of the request's bearer token (never from the query string).

    A token of a revoked session is refused like the gateway refuses it, wherever the app
    follows the revocations (the shared state's ``revocations``).
    """
    verified = request.scope.get(CLAIMS_SCOPE_KEY)
    if isinstance(verified, Claims):
        return verified
    token = bearer_token(request.scope["headers"])
    if token is None:
        raise Unauthorized("a bearer token is required", error=None)
    shared = request_shared_state(request)
    verifier = shared.verifier
    if verifier is None:
        raise ServiceUnavailable("tokens cannot be verified yet")
    try:
        claims = await verifier.verify(token)
    except KeysUnavailable as exc:
        raise ServiceUnavailable(str(exc)) from None
    except InvalidToken as exc:
        raise Unauthorized(str(exc)) from None
    revocations = shared.revocations
    if revocations is not None and revocations.is_revoked(claims.sid):
        raise Unauthorized("the session of this token was revoked")
    return claims


ClaimsDep = Annotated[Claims, Depends(current_claims)]


class RequireScope:
    """``Annotated[Claims, Depends(RequireScope("tasks:read"))]``: 403 without the scope."""

    def __init__(self, scope: str) -> None:
        self.scope = scope

    async def __call__(self, claims: ClaimsDep) -> Claims:
        if not claims.has_scope(self.scope):
            raise InsufficientScope(self.scope)
        return claims
