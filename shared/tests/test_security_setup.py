"""An app that verifies tokens is unready until auth's keys are loaded, then verifies them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import httpx
from fastapi import Depends, FastAPI

from momentum_devtools.testing.apps import running_app
from momentum_devtools.testing.issuer import TestIssuer
from momentum_shared.app import build_app
from momentum_shared.security import Claims, RequireScope, running_verifier
from momentum_shared.settings import TokenVerificationSettings
from momentum_shared.state import shared_state


def make_app(jwks_client: httpx.AsyncClient) -> FastAPI:
    settings = TokenVerificationSettings(jwks_url="http://auth.test/.well-known/jwks.json")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with running_verifier(app, settings):
            yield

    app = build_app(service="demo", title="demo", version="0", lifespan=lifespan)
    shared_state(app).jwks_client = jwks_client

    @app.get("/whoami")
    async def whoami(claims: Annotated[Claims, Depends(RequireScope("profile"))]) -> str:
        return claims.sub

    return app


async def test_unready_while_the_jwks_cannot_be_fetched(issuer: TestIssuer) -> None:
    def refuse(_request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("auth is down")

    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as down,
        running_app(make_app(down)) as client,
    ):
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert "jwks" in response.json()["detail"]
        token = issuer.bearer(scope="profile")
        # Auth cannot be reached: a dependency is down (503), the token is not at fault.
        refused = await client.get("/whoami", headers=token)
        assert refused.status_code == 503
        assert int(refused.headers["retry-after"]) >= 1


async def test_ready_and_verifying_once_the_keys_load(issuer: TestIssuer) -> None:
    async with issuer.client() as jwks, running_app(make_app(jwks)) as client:
        assert (await client.get("/readyz")).status_code == 200
        user = "6a1f0d8e-2d36-4a43-9a43-59cfb5b0b1f1"
        response = await client.get("/whoami", headers=issuer.bearer(user, scope="profile"))
        assert response.status_code == 200
        assert response.json() == user
        narrow = issuer.bearer(user, scope="tasks:read")
        assert (await client.get("/whoami", headers=narrow)).status_code == 403
