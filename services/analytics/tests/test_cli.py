"""The ``momentum-analytics`` operator command: rebuild, dead-letters, retry."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from momentum_analytics.cli import main
from momentum_analytics.repository import AnalyticsRepository
from momentum_analytics.settings import AnalyticsSettings
from momentum_analytics.state import app_state
from momentum_devtools.natsserver import free_port
from momentum_devtools.testing.issuer import TestIssuer
from momentum_shared.db import UnitOfWork
from momentum_shared.events import AUTH_STREAM, TASK_STREAM
from services.analytics.tests.conftest import Feed
from services.analytics.tests.support import (
    FixedClock,
    at,
    completed,
    created,
    logged_in,
    updated,
)


@pytest.fixture
def cli_env(settings: AnalyticsSettings, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {
        "MOMENTUM_ANALYTICS_DATABASE_URL": settings.database_url,
        "MOMENTUM_ANALYTICS_NATS_URL": settings.nats_url,
        "MOMENTUM_ANALYTICS_CONSUMER_FETCH_TIMEOUT_SECONDS": "0.2",
        "MOMENTUM_ANALYTICS_CONSUMER_NAK_DELAY_SECONDS": "0.05",
        "MOMENTUM_ANALYTICS_DEAD_LETTER_AFTER_DELIVERIES": "3",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


async def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    code = await asyncio.to_thread(main, list(argv))
    return code, json.loads(capsys.readouterr().out)


async def week(client: httpx.AsyncClient, issuer: TestIssuer, user: uuid.UUID) -> dict[str, Any]:
    response = await client.get(
        "/analytics/reports/weekly", params={"week": "2026-W48"}, headers=issuer.bearer(user)
    )
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    body.pop("generated_at")
    return body


async def test_rebuild_empties_the_projections_and_replays_both_streams(
    app: FastAPI,
    client: httpx.AsyncClient,
    issuer: TestIssuer,
    clock: FixedClock,
    feed: Feed,
    cli_env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    clock.now = at("2026-11-29T12:00:00Z")
    user = uuid.uuid4()
    task = uuid.uuid4()
    events = [
        updated(user, at("2026-11-20T00:00:00Z"), "Pacific/Kiritimati", usertz="UTC"),
        logged_in(user, at("2026-11-23T10:30:00Z"), usertz=None),  # 11-24 on Kiritimati
        logged_in(user, at("2026-11-24T08:00:00Z"), usertz="Europe/Berlin"),
        created(user, at("2026-11-25T08:00:00Z"), task, usertz="Europe/Berlin"),
        completed(user, at("2026-11-26T08:00:00Z"), task, usertz="Europe/Berlin"),
    ]
    await feed(events + events[:2])
    await feed([], raw=[("tasks.task.completed", b"poison")])
    before = await week(client, issuer, user)
    assert before["totals"]["logins"] == 2
    async with UnitOfWork(app_state(app).session_factory) as uow:
        await AnalyticsRepository(uow.session).clear_projections()
    assert (await week(client, issuer, user))["totals"]["logins"] == 0

    code, output = await run_cli(capsys, "rebuild")

    assert code == 0
    assert output == {"rebuilt": True, "replayed": {AUTH_STREAM: 5, TASK_STREAM: 3}}
    assert await week(client, issuer, user) == before
    async with UnitOfWork(app_state(app).session_factory) as uow:
        letters = await AnalyticsRepository(uow.session).dead_letters()
    assert len(letters) == 1  # the poison was met again, and is still parked once


async def test_dead_letters_are_listed_and_retried(
    app: FastAPI,
    client: httpx.AsyncClient,
    issuer: TestIssuer,
    clock: FixedClock,
    feed: Feed,
    cli_env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    clock.now = at("2026-11-29T12:00:00Z")
    user = uuid.uuid4()
    await feed([], raw=[("auth.user.logged_in", b"poison")])
    # A message that failed for a reason since fixed (say, a bug): parked as a dead letter.
    parked = logged_in(user, at("2026-11-24T08:00:00Z"), usertz="UTC")
    async with UnitOfWork(app_state(app).session_factory) as uow:
        await AnalyticsRepository(uow.session).add_dead_letter(
            stream=AUTH_STREAM,
            stream_sequence=999,
            subject=parked.type,
            event_id=parked.id,
            deliveries=5,
            payload=parked.to_json(),
            error="RuntimeError: a bug since fixed",
            at=clock.now,
        )

    code, listed = await run_cli(capsys, "dead-letters")
    assert code == 0
    assert [(row["stream_sequence"], row["event_id"], row["payload"]) for row in listed] == [
        (1, None, "poison"),
        (999, parked.id, parked.to_json().decode()),
    ]

    code, outcomes = await run_cli(capsys, "retry")
    assert code == 1  # the poison still fails
    assert [(row["applied"], row["error"] is None) for row in outcomes] == [
        (False, False),
        (True, True),
    ]
    assert (await week(client, issuer, user))["totals"]["logins"] == 1
    code, listed = await run_cli(capsys, "dead-letters")
    assert [row["stream_sequence"] for row in listed] == [1]
    # Retrying again changes nothing: the inbox already holds the event.
    await run_cli(capsys, "retry")
    assert (await week(client, issuer, user))["totals"]["logins"] == 1


def test_the_console_script_is_installed(cli_env: dict[str, str]) -> None:
    script = Path(sys.executable).with_name("momentum-analytics")
    result = subprocess.run(
        [str(script), "dead-letters"],
        env={**os.environ, **cli_env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


async def test_rebuild_without_nats_fails_and_keeps_the_projections(
    app: FastAPI,
    client: httpx.AsyncClient,
    issuer: TestIssuer,
    clock: FixedClock,
    feed: Feed,
    cli_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    clock.now = at("2026-11-29T12:00:00Z")
    user = uuid.uuid4()
    await feed([logged_in(user, at("2026-11-24T08:00:00Z"), usertz="UTC")])
    monkeypatch.setenv("MOMENTUM_ANALYTICS_NATS_URL", f"nats://127.0.0.1:{free_port()}")
    monkeypatch.setenv("MOMENTUM_ANALYTICS_NATS_CONNECT_TIMEOUT_SECONDS", "0.5")

    code = await asyncio.to_thread(main, ["rebuild"])

    assert code == 2
    assert "momentum-analytics rebuild:" in capsys.readouterr().err
    assert (await week(client, issuer, user))["totals"]["logins"] == 1
