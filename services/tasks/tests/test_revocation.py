"""A revoked session is refused by tasks itself, not only by the gateway in front of it."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from momentum_devtools.natsserver import EmbeddedNats
from momentum_devtools.testing.apps import running_app
from momentum_devtools.testing.issuer import TestIssuer
from momentum_devtools.testing.revocations import eventually, revoke
from momentum_tasks.app import create_app
from services.tasks.tests.conftest import make_settings

pytestmark = pytest.mark.nats

FOLLOW: dict[str, Any] = {
    "revocation_enabled": True,
    "revocation_retry_seconds": 0.1,
    "revocation_heartbeat_seconds": 0.5,
}


async def ready(client: httpx.AsyncClient) -> bool:
    return (await client.get("/readyz")).status_code == 200


async def test_a_revoked_session_is_refused_directly_at_tasks(
    database_url: str, issuer: TestIssuer, nats_url: str
) -> None:
    user = uuid.uuid4()
    sid, other_sid = str(uuid.uuid4()), str(uuid.uuid4())
    revoked, kept = issuer.bearer(user, sid=sid), issuer.bearer(user, sid=other_sid)
    settings = make_settings(database_url, nats_url=nats_url, **FOLLOW)
    async with running_app(create_app(settings, jwks_client=issuer.client())) as client:
        await eventually(lambda: ready(client))
        assert (await client.get("/tasks", headers=revoked)).status_code == 200
        await revoke(nats_url, user, sid)  # as auth publishes it on logout

        async def refused() -> bool:
            return (await client.get("/tasks", headers=revoked)).status_code == 401

        await eventually(refused)
        response = await client.get("/tasks", headers=revoked)
        assert response.json()["detail"] == "the session of this token was revoked"
        assert 'error="invalid_token"' in response.headers["www-authenticate"]
        written = await client.post("/tasks", json={"title": "after logout"}, headers=revoked)
        assert written.status_code == 401
        # The user's other session is untouched.
        assert (await client.get("/tasks", headers=kept)).status_code == 200
        created = await client.post("/tasks", json={"title": "still here"}, headers=kept)
        assert created.status_code == 201


async def test_a_replica_started_after_the_revocation_is_unready_until_it_has_read_it(
    database_url: str,
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
    settings = make_settings(database_url, nats_url=server.url, **FOLLOW)
    async with running_app(create_app(settings, jwks_client=issuer.client())) as client:
        # NATS is unreachable: the new replica cannot know the revocation, so it is unready.
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert "revocations_caught_up" in response.json()["detail"]
        assert response.json()["checks"]["database"] == {"status": "ok"}

        server = nats_server_factory(tmp_path / "nats", port=server.port).start()
        await eventually(lambda: ready(client), patience=20)
        # Ready means caught up: the revocation is already refused, nothing else is.
        assert (await client.get("/tasks", headers=revoked)).status_code == 401
        assert (await client.get("/tasks", headers=kept)).status_code == 200

        # NATS going away after the catch-up never makes it unready, and the list holds.
        server.stop()
        assert (await client.get("/readyz")).status_code == 200
        assert (await client.get("/tasks", headers=revoked)).status_code == 401
        assert (await client.get("/tasks", headers=kept)).status_code == 200
