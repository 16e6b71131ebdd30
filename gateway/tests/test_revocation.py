"""Session revocation from ``auth.session.revoked`` on a real NATS JetStream server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import nats
import pytest
from fastapi import FastAPI

from gateway.tests.support import internal_get
from momentum_devtools.natsserver import EmbeddedNats
from momentum_devtools.testing.apps import running_app
from momentum_devtools.testing.issuer import TestIssuer
from momentum_devtools.testing.revocations import eventually, publish_raw, revoke
from momentum_shared.events import AUTH_STREAM
from momentum_shared.nats import ensure_stream

pytestmark = pytest.mark.nats

FAST = {
    "revocation_enabled": True,
    "revocation_retry_seconds": 0.1,
    "revocation_heartbeat_seconds": 0.5,
}


def status_of(http: httpx.AsyncClient, headers: dict[str, str]) -> Callable[[], Awaitable[bool]]:
    async def refused() -> bool:
        return (await http.get("/tasks/1", headers=headers)).status_code == 401

    return refused


async def test_a_revoked_session_is_refused_on_every_replica(
    app_factory: Callable[..., FastAPI], issuer: TestIssuer, nats_url: str
) -> None:
    user = uuid.uuid4()
    sid, other_sid = str(uuid.uuid4()), str(uuid.uuid4())
    revoked = issuer.bearer(user, sid=sid)
    kept = issuer.bearer(user, sid=other_sid)
    await publish_raw(nats_url, b"{}")  # the stream exists; nothing relevant in it yet
    async with (
        running_app(app_factory(nats_url=nats_url, **FAST)) as one,
        running_app(app_factory(nats_url=nats_url, **FAST)) as two,
    ):
        assert (await one.get("/tasks/1", headers=revoked)).status_code == 200
        assert (await two.get("/tasks/1", headers=revoked)).status_code == 200
        await revoke(nats_url, user, sid)
        await eventually(status_of(one, revoked))
        await eventually(status_of(two, revoked))
        refused = await one.get("/tasks/1", headers=revoked)
        assert refused.status_code == 401
        assert 'error="invalid_token"' in refused.headers["www-authenticate"]
        assert "revoked" in refused.json()["detail"]
        # Another session of the same user is untouched.
        assert (await one.get("/tasks/1", headers=kept)).status_code == 200
        assert (await two.get("/tasks/1", headers=kept)).status_code == 200


async def test_a_restarted_gateway_rebuilds_the_deny_list_from_the_stream(
    app_factory: Callable[..., FastAPI], issuer: TestIssuer, nats_url: str
) -> None:
    user = uuid.uuid4()
    sid = str(uuid.uuid4())
    await revoke(nats_url, user, sid)
    await revoke(nats_url, user, str(uuid.uuid4()), expires_in=-3600)  # long dead: ignored
    async with running_app(app_factory(nats_url=nats_url, **FAST)) as http:
        await eventually(status_of(http, issuer.bearer(user, sid=sid)))

        async def caught_up() -> bool:
            checks = (await internal_get(http, "/readyz")).json()["checks"]
            return bool(checks["revocations"]["caught_up"])

        await eventually(caught_up)
        info = (await internal_get(http, "/readyz")).json()["checks"]["revocations"]
        assert info["revoked_sessions"] == 1
        assert info["events"] == 2


async def test_the_stream_may_appear_after_the_gateway_started(
    app_factory: Callable[..., FastAPI], issuer: TestIssuer, nats_url: str
) -> None:
    user = uuid.uuid4()
    sid = str(uuid.uuid4())
    async with running_app(app_factory(nats_url=nats_url, **FAST)) as http:

        async def waiting() -> bool:
            checks = (await internal_get(http, "/readyz")).json()["checks"]
            return bool(checks["revocations"]["state"] == "waiting for stream")

        await eventually(waiting)
        assert (await internal_get(http, "/readyz")).status_code == 200  # never unready for NATS
        await revoke(nats_url, user, sid)  # creates the stream, as auth would
        await eventually(status_of(http, issuer.bearer(user, sid=sid)))


async def test_known_revocations_hold_while_nats_is_down(
    app_factory: Callable[..., FastAPI],
    issuer: TestIssuer,
    nats_server_factory: type[EmbeddedNats],
    tmp_path: Path,
) -> None:
    server = nats_server_factory(tmp_path / "nats").start()
    user = uuid.uuid4()
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    async with running_app(app_factory(nats_url=server.url, **FAST)) as http:
        await revoke(server.url, user, first)
        await eventually(status_of(http, issuer.bearer(user, sid=first)))
        server.stop()
        # NATS is gone: known revocations still hold, everything else still passes.
        assert (
            await http.get("/tasks/1", headers=issuer.bearer(user, sid=first))
        ).status_code == 401
        assert (await http.get("/tasks/1", headers=issuer.bearer(user))).status_code == 200
        ready = await internal_get(http, "/readyz")
        assert ready.status_code == 200
        server = nats_server_factory(tmp_path / "nats", port=server.port).start()
        # Back up: the consumer resumes and later revocations arrive too.
        await revoke(server.url, user, second)
        await eventually(status_of(http, issuer.bearer(user, sid=second)), patience=20)
        assert (
            await http.get("/tasks/1", headers=issuer.bearer(user, sid=first))
        ).status_code == 401


async def test_malformed_events_are_skipped(
    app_factory: Callable[..., FastAPI], issuer: TestIssuer, nats_url: str
) -> None:
    user = uuid.uuid4()
    sid = str(uuid.uuid4())
    await publish_raw(nats_url, b"not json")
    await publish_raw(nats_url, b'{"specversion": "1.0", "type": "auth.session.revoked"}')
    await revoke(nats_url, user, sid)
    async with running_app(app_factory(nats_url=nats_url, **FAST)) as http:
        await eventually(status_of(http, issuer.bearer(user, sid=sid)))


async def test_an_empty_stream_is_caught_up_at_once(
    app_factory: Callable[..., FastAPI], nats_url: str
) -> None:
    nc = await nats.connect(nats_url)
    await ensure_stream(nc.jetstream(), AUTH_STREAM)
    await nc.close()
    async with running_app(app_factory(nats_url=nats_url, **FAST)) as http:

        async def caught_up() -> bool:
            info = (await internal_get(http, "/readyz")).json()["checks"]["revocations"]
            ok = info["status"] == "ok" and info["state"] == "subscribed"
            return bool(ok and info["caught_up"])

        await eventually(caught_up)


async def test_a_new_gateway_replays_from_the_horizon_not_the_start_of_the_stream(
    app_factory: Callable[..., FastAPI], issuer: TestIssuer, nats_url: str
) -> None:
    user = uuid.uuid4()
    old, recent = str(uuid.uuid4()), str(uuid.uuid4())
    await revoke(nats_url, user, old, expires_in=3600)  # still live, but before the horizon
    await asyncio.sleep(0.3)
    settings = {**FAST, "revocation_replay_seconds": 0, "token_leeway_seconds": 0}
    async with running_app(app_factory(nats_url=nats_url, **settings)) as http:

        async def caught_up() -> bool:
            info = (await internal_get(http, "/readyz")).json()["checks"]["revocations"]
            ok = info["status"] == "ok" and info["state"] == "subscribed"
            return bool(ok and info["caught_up"])

        await eventually(caught_up)
        await revoke(nats_url, user, recent, expires_in=3600)
        await eventually(status_of(http, issuer.bearer(user, sid=recent)))
        info = (await internal_get(http, "/readyz")).json()["checks"]["revocations"]
        assert info["events"] == 1  # the revocation before the horizon was never read
