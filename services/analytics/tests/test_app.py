"""Readiness of analytics: the database and the token keys are required, NATS is not."""

from __future__ import annotations

import httpx

from momentum_analytics.app import create_app
from momentum_analytics.settings import AnalyticsSettings
from momentum_devtools.testing.apps import running_app
from momentum_devtools.testing.issuer import TestIssuer


async def test_not_ready_until_the_jwks_is_loaded(
    settings: AnalyticsSettings, issuer: TestIssuer
) -> None:
    auth_up = False
    served = issuer.transport()

    async def handler(request: httpx.Request) -> httpx.Response:
        if not auth_up:
            raise httpx.ConnectError("auth is not listening yet", request=request)
        return await served.handle_async_request(request)

    jwks_client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    app = create_app(settings, jwks_client=jwks_client)
    async with running_app(app) as client:
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert "jwks" in response.json()["detail"]
        assert response.json()["checks"]["database"] == {"status": "ok"}

        auth_up = True
        response = await client.get("/readyz")
        assert response.status_code == 200, response.text
        token = await client.get("/analytics/streaks", headers=issuer.bearer())
        assert token.status_code == 200
    await jwks_client.aclose()
