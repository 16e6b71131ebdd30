"""The key source auth's own verifier reads: the JWKS served from the database in process."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from momentum_auth.signing_keys.crypto import public_jwk
from momentum_auth.signing_keys.repository import SigningKeyRepository
from momentum_shared.events import utcnow


class DatabaseJwksTransport(httpx.AsyncBaseTransport):
    """Answers the verifier's JWKS fetch straight from the auth database.

    Auth verifies its own tokens with the shared ``JwksCache`` and ``TokenVerifier``, so
    its checks are exactly those of every other service; only the fetch is served in
    process, with no network hop and no request to itself.
    """

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._session_factory = session_factory

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        del request  # every request is the JWKS fetch
        async with self._session_factory() as session:
            rows = await SigningKeyRepository(session).get_published(now=utcnow())
        return httpx.Response(200, json={"keys": [public_jwk(row) for row in rows]})
