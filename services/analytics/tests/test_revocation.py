"""A revoked session is refused by analytics itself, not only by the gateway in front of it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from momentum_analytics.app import create_app
from momentum_analytics.settings import AnalyticsSettings
from momentum_devtools.natsserver import EmbeddedNats
from momentum_devtools.testing.apps import running_app
from momentum_devtools.testing.issuer import TestIssuer
from momentum_devtools.testing.revocations import eventually, revoke

pytestmark = pytest.mark.nats

FOLLOW: dict[str, Any] = {
    "revocation_enabled": True,
    "revocation_retry_seconds": 0.1,
    "revocation_heartbeat_seconds": 0.5,
}
STREAKS = "/analytics/streaks"


async def ready(client: httpx.AsyncClient) -> bool:
    return (await client.get("/readyz")).status_code == 200


async def test_a_revoked_session_is_refused_directly_at_analytics(
    settings_factory: Callable[..., AnalyticsSettings], issuer: TestIssuer, nats_url: str
) -> None:
    user = uuid.uuid4()
    sid, other_sid = str(uuid.uuid4()), str(uuid.uuid4())
    revoked, kept = issuer.bearer(user, sid=sid), issuer.bearer(user, sid=other_sid)
    app = create_app(settings_factory(**FOLLOW), jwks_client=issuer.client())
    async with running_app(app) as client:
        await eventually(lambda: ready(client))
        assert (await client.get(STREAKS, headers=revoked)).status_code == 200
        await revoke(nats_url, user, sid)  # as auth publishes it on a password change

        async def refused() -> bool:
            return (await client.get(STREAKS, headers=revoked)).status_code == 401

        await eventually(refused)
        response = await client.get(STREAKS, headers=revoked)
        assert response.json()["detail"] == "the session of this token was revoked"
        assert 'error="invalid_token"' in response.headers["www-authenticate"]
        # The user's other session is untouched.
        assert (await client.get(STREAKS, headers=kept)).status_code == 200


async def test_a_replica_started_after_the_revocation_is_unready_until_it_has_read_it(
    settings_factory: Callable[..., AnalyticsSettings],
    issuer: TestIssuer,
    nats_server_factory: type[EmbeddedNats],
    tmp_path: Path,
) -> None:
    server = nats_server_factory(tmp_path / "nats").start()
    user = uuid.uuid4()
    sid = str(uuid.uuid4())
    revoked, kept = issuer.bearer(user, sid=sid), issuer.bearer(user)
    await revoke(server.url, user, sid)
    server.stop()
    app = create_app(settings_factory(nats_url=server.url, **FOLLOW), jwks_client=issuer.client())
    async with running_app(app) as client:
        # NATS is unreachable: the new replica cannot know the revocation, so it is unready.
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert "revocations_caught_up" in response.json()["detail"]
        assert response.json()["checks"]["database"] == {"status": "ok"}

        server = nats_server_factory(tmp_path / "nats", port=server.port).start()
        await eventually(lambda: ready(client), patience=20)
        # Ready means caught up: the revocation is already refused, nothing else is.
        assert (await client.get(STREAKS, headers=revoked)).status_code == 401
        assert (await client.get(STREAKS, headers=kept)).status_code == 200

        # NATS going away after the catch-up never makes it unready, and the list holds.
        server.stop()
        assert (await client.get("/readyz")).status_code == 200
        assert (await client.get(STREAKS, headers=revoked)).status_code == 401
