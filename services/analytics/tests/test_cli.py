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
import nats
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
    captured = capsys.readouterr()
    assert captured.out, captured.err
    return code, json.loads(captured.out)


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


async def test_rebuild_refuses_when_a_stream_no_longer_holds_its_whole_history(
    app: FastAPI,
    client: httpx.AsyncClient,
    issuer: TestIssuer,
    clock: FixedClock,
    feed: Feed,
    settings: AnalyticsSettings,
    cli_env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    clock.now = at("2026-11-29T12:00:00Z")
    user = uuid.uuid4()
    await feed(
        [
            logged_in(user, at("2026-11-23T08:00:00Z"), usertz="UTC"),
            logged_in(user, at("2026-11-24T08:00:00Z"), usertz="UTC"),
        ]
    )
    # The stream's limits discarded its oldest event (as max_age or max_bytes would).
    nc = await nats.connect(settings.nats_url)
    try:
        js = nc.jetstream()
        first = (await js.stream_info(AUTH_STREAM)).state.first_seq
        await js.delete_msg(AUTH_STREAM, first)
        await js.purge_stream(AUTH_STREAM, seq=first + 1)
    finally:
        await nc.close()

    code = await asyncio.to_thread(main, ["rebuild"])

    assert code == 2
    error = capsys.readouterr().err
    assert "IncompleteHistory" in error
    assert f"stream {AUTH_STREAM} no longer holds its whole history" in error
    # Nothing was emptied: both logins still count.
    assert (await week(client, issuer, user))["totals"]["logins"] == 2


async def second_edition(
    client: httpx.AsyncClient, issuer: TestIssuer, user: uuid.UUID
) -> dict[str, Any]:
    """Every second-edition answer for ``user`` (generated_at left out)."""
    headers = issuer.bearer(user, tz="UTC")
    answers: dict[str, Any] = {}
    for name, path, params in (
        ("goals", "/analytics/goals", {}),
        ("november", "/analytics/reports/monthly", {"month": "2026-11"}),
        (
            "weeks",
            "/analytics/reports",
            {"from": "2026-11-01", "to": "2026-11-29", "group": "week"},
        ),
        ("calendar", "/analytics/calendar", {"year": "2026"}),
        ("week", "/analytics/reports/weekly", {"week": "2026-W48"}),
    ):
        response = await client.get(path, params=params, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        body.pop("generated_at", None)
        answers[name] = body
    return answers


async def test_rebuild_reproduces_goal_streaks_classified_totals_and_the_calendar(
    app: FastAPI,
    client: httpx.AsyncClient,
    issuer: TestIssuer,
    clock: FixedClock,
    feed: Feed,
    cli_env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    user = uuid.uuid4()
    tasks = [uuid.uuid4() for _ in range(4)]
    write = issuer.bearer(user, tz="UTC", scope="analytics:read analytics:write")

    def done(when: str, task: uuid.UUID, due: str | None) -> Any:
        event = completed(user, at(when), task, usertz=None)  # placed by the known timezone
        event.data["due_at"] = due
        return event

    await feed(
        [
            updated(user, at("2026-11-01T00:00:00Z"), "Asia/Tokyo", usertz="UTC"),
            done("2026-11-23T16:00:00Z", tasks[0], "2026-11-24T00:00:00Z"),  # 11-24 in Tokyo
            done("2026-11-24T16:00:00Z", tasks[1], None),
            done("2026-11-25T16:00:00Z", tasks[2], "2026-11-25T12:00:00Z"),
        ]
    )
    clock.now = at("2026-11-24T01:00:00Z")  # Tuesday in Tokyo
    assert (
        await client.put("/analytics/goals", json={"daily_tasks": 1}, headers=write)
    ).status_code == 200
    clock.now = at("2026-11-26T01:00:00Z")
    body = {"daily_tasks": 2, "weekly_tasks": 4}
    assert (await client.put("/analytics/goals", json=body, headers=write)).status_code == 200
    await feed(
        [
            created(user, at("2026-11-20T00:00:00Z"), tasks[0], usertz="UTC"),
            done("2026-11-26T02:00:00Z", tasks[3], "2026-11-27T00:00:00Z"),
            done("2026-11-26T03:00:00Z", tasks[0], None),
            updated(user, at("2026-11-25T20:00:00Z"), "Asia/Tokyo", usertz="UTC"),
        ]
    )
    clock.now = at("2026-11-26T12:00:00Z")
    before = await second_edition(client, issuer, user)
    assert before["goals"]["daily_goal"] == {"current": 3, "longest": 3, "met_today": True}
    assert before["week"]["totals"]["completed_on_time"] == 2
    async with UnitOfWork(app_state(app).session_factory) as uow:
        await AnalyticsRepository(uow.session).clear_projections()
    assert (await second_edition(client, issuer, user))["goals"]["daily_tasks"] == 2  # kept

    code, _ = await run_cli(capsys, "rebuild")

    assert code == 0
    assert await second_edition(client, issuer, user) == before
