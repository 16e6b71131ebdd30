"""Auth's events (docs/spec/events.md): in the outbox with the change, relayed to JetStream."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys

import httpx
import nats
import sqlalchemy as sa
from fastapi import FastAPI
from nats.js.errors import NotFoundError

from momentum_auth.app import create_app
from momentum_auth.models import OUTBOX
from momentum_auth.state import app_state
from momentum_devtools.testing.apps import running_app
from momentum_shared.events import AUTH_STREAM, CLOUDEVENTS_CONTENT_TYPE, CloudEvent
from services.auth.tests.conftest import make_settings
from services.auth.tests.support import outbox, refresh, register, tokens


async def test_registration_writes_its_event_in_the_same_transaction(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    user = await register(client, timezone="Australia/Sydney")
    [event] = await outbox(app)
    assert event.type == "auth.user.registered"
    assert event.source == "/momentum/auth"
    assert event.subject == user["id"]
    assert event.usertz == "Australia/Sydney"
    assert event.data == {"user_id": user["id"], "timezone": "Australia/Sydney"}
    # A refused registration leaves nothing behind.
    duplicate = await client.post(
        "/auth/register", json={"email": user["email"], "password": "long enough"}
    )
    assert duplicate.status_code == 409
    assert len(await outbox(app)) == 1


async def test_events_never_carry_emails_or_secrets(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    user = await register(client)
    pair = await tokens(client, user["email"])
    await refresh(client, pair["refresh_token"])
    await refresh(client, pair["refresh_token"])  # replay: session revoked
    events = await outbox(app)
    assert {event.type for event in events} == {
        "auth.user.registered",
        "auth.user.logged_in",
        "auth.session.revoked",
    }
    for event in events:
        text = event.to_json().decode()
        assert user["email"] not in text
        assert pair["refresh_token"] not in text
        assert event.usertz == "UTC"
        assert event.typed_data() is not None


async def test_events_reach_the_auth_stream(database_url: str, nats_url: str) -> None:
    settings = make_settings(
        database_url,
        outbox_relay_enabled=True,
        nats_url=nats_url,
        outbox_poll_interval_seconds=0.05,
    )
    app = create_app(settings)
    async with running_app(app) as client:
        user = await register(client, timezone="Europe/Berlin")
        await tokens(client, user["email"])
        expected = {event.id: event for event in await outbox(app)}
        connection = await nats.connect(nats_url)
        try:
            js = connection.jetstream()
            received: dict[str, tuple[str, CloudEvent, dict[str, str]]] = {}
            for _ in range(200):  # until relayed (the relay polls every 50 ms)
                for subject in ("auth.user.registered", "auth.user.logged_in"):
                    try:
                        message = await js.get_last_msg(AUTH_STREAM, subject)
                    except NotFoundError:
                        continue
                    assert message.data is not None
                    event = CloudEvent.from_json(message.data)
                    received[event.id] = (str(message.subject), event, dict(message.headers or {}))
                if len(received) == len(expected):
                    break
                await asyncio.sleep(0.05)
        finally:
            await connection.close()
        assert set(received) == set(expected)
        for event_id, (subject, event, headers) in received.items():
            assert subject == event.type
            assert headers["Nats-Msg-Id"] == event_id
            assert headers["Content-Type"] == CLOUDEVENTS_CONTENT_TYPE
            assert event.usertz == "Europe/Berlin"
            assert event.data["user_id"] == user["id"]
        readiness = (await client.get("/readyz")).json()["checks"]["nats"]
        assert readiness["connected"] is True
        assert json.dumps(readiness)


async def test_the_relay_command_publishes_the_outbox_on_its_own(
    app: FastAPI, client: httpx.AsyncClient, database_url: str, nats_url: str
) -> None:
    await register(client)
    expected = {event.id for event in await outbox(app)}
    environment = {
        **os.environ,
        "MOMENTUM_AUTH_DATABASE_URL": database_url,
        "MOMENTUM_AUTH_NATS_URL": nats_url,
        "MOMENTUM_AUTH_OUTBOX_POLL_INTERVAL_SECONDS": "0.05",
        "MOMENTUM_AUTH_LOG_JSON": "false",
    }
    relay = subprocess.Popen(
        [sys.executable, "-m", "momentum_auth.cli", "relay"],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    unpublished = sa.select(OUTBOX.c.id).where(OUTBOX.c.published_at.is_(None))
    try:
        for _ in range(400):  # until relayed, or 20 s
            async with app_state(app).engine.connect() as connection:
                if not (await connection.execute(unpublished)).all():
                    break
            await asyncio.sleep(0.05)
    finally:
        relay.send_signal(signal.SIGTERM)
        assert relay.wait(timeout=30) == 0
    nc = await nats.connect(nats_url)
    try:
        message = await nc.jetstream().get_last_msg(AUTH_STREAM, "auth.user.registered")
    finally:
        await nc.close()
    assert message.headers is not None
    assert message.headers["Nats-Msg-Id"] in expected
