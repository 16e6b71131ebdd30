"""The JetStream consumer: durable config, missing streams, NATS outages, poison, replicas."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from nats.js.api import ConsumerConfig

from momentum_analytics.app import create_app
from momentum_analytics.repository import AnalyticsRepository
from momentum_analytics.settings import AnalyticsSettings
from momentum_analytics.state import app_state
from momentum_devtools.natsserver import EmbeddedNats, free_port
from momentum_devtools.testing.apps import running_app
from momentum_devtools.testing.issuer import TestIssuer
from momentum_shared.db import UnitOfWork
from momentum_shared.events import AUTH_STREAM, TASK_STREAM
from momentum_shared.metrics import REGISTRY
from momentum_shared.nats import connect, ensure_stream
from services.analytics.tests.conftest import Feed
from services.analytics.tests.reference import Reference
from services.analytics.tests.support import (
    FixedClock,
    as_reference,
    at,
    cloud_event,
    completed,
    created,
    logged_in,
    publish,
    wait_drained,
)


async def eventually(check: Callable[[], Any], *, timeout: float = 20.0) -> None:
    """Poll an async check until it stops raising AssertionError."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            await check()
            return
        except AssertionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.05)


async def report(
    client: httpx.AsyncClient, issuer: TestIssuer, user: uuid.UUID, week: str
) -> dict[str, Any]:
    response = await client.get(
        "/analytics/reports/weekly", params={"week": week}, headers=issuer.bearer(user)
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_the_durable_is_created_or_updated_at_start_up(
    app: FastAPI, nats_url: str, settings: AnalyticsSettings
) -> None:
    nc = await connect(nats_url, name="analytics-tests")
    js = nc.jetstream()
    try:
        for stream, subject in ((AUTH_STREAM, "auth.>"), (TASK_STREAM, "tasks.>")):
            await ensure_stream(js, stream)
            # An older deployment's config: pull_subscribe alone would keep it.
            await js.add_consumer(
                stream,
                ConsumerConfig(
                    durable_name="analytics",
                    ack_wait=5,
                    max_ack_pending=7,
                    filter_subject=subject,
                ),
            )
        async with running_app(app):

            async def updated() -> None:
                for stream in (AUTH_STREAM, TASK_STREAM):
                    info = await js.consumer_info(stream, "analytics")
                    assert info.config.max_ack_pending == settings.consumer_max_ack_pending
                    assert info.config.ack_wait == settings.consumer_ack_wait_seconds

            await eventually(updated)
    finally:
        await nc.close()


async def test_streams_created_after_start_up_are_consumed(
    client: httpx.AsyncClient, issuer: TestIssuer, clock: FixedClock, nats_url: str
) -> None:
    async def waiting() -> None:
        body = (await client.get("/readyz")).json()
        streams = body["checks"]["nats"]["streams"]
        assert streams[AUTH_STREAM]["state"] == "waiting for stream"
        assert streams[TASK_STREAM]["state"] == "waiting for stream"

    await eventually(waiting)
    clock.now = at("2026-11-26T12:00:00Z")
    user = uuid.uuid4()
    await publish(nats_url, [logged_in(user, at("2026-11-24T09:00:00Z"), usertz="UTC")])
    await wait_drained(nats_url)
    body = await report(client, issuer, user, "2026-W48")
    assert body["totals"]["logins"] == 1


async def test_nats_down_never_makes_analytics_unready(
    settings_factory: Callable[..., AnalyticsSettings], issuer: TestIssuer
) -> None:
    settings = settings_factory(nats_url=f"nats://127.0.0.1:{free_port()}")
    app = create_app(settings, jwks_client=issuer.client())
    async with running_app(app) as client:
        response = await client.get("/readyz")
        assert response.status_code == 200
        assert response.json()["checks"]["nats"]["status"] == "degraded"
        assert response.json()["checks"]["database"] == {"status": "ok"}
        reports = await client.get("/analytics/streaks", headers=issuer.bearer())
        assert reports.status_code == 200


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_unknown_types_are_ignored_and_poison_is_dead_lettered(
    app: FastAPI,
    client: httpx.AsyncClient,
    issuer: TestIssuer,
    clock: FixedClock,
    nats_url: str,
) -> None:
    clock.now = at("2026-11-26T12:00:00Z")
    user = uuid.uuid4()
    task = uuid.uuid4()
    dead_before = sample("momentum_analytics_dead_letters_total", stream=TASK_STREAM)
    poison_missing_task = cloud_event(
        "tasks.task.created", user, at("2026-11-24T10:00:00Z"), usertz="UTC"
    )
    await publish(
        nats_url,
        [
            cloud_event("tasks.task.archived", user, at("2026-11-24T10:00:00Z"), usertz="UTC"),
            created(user, at("2026-11-24T10:00:00Z"), task, usertz="UTC"),
            poison_missing_task,
            completed(user, at("2026-11-25T10:00:00Z"), task, usertz="UTC"),
        ],
        raw=[("tasks.task.created", b"{not json")],
    )
    await wait_drained(nats_url)
    body = await report(client, issuer, user, "2026-W48")
    assert body["totals"] == {
        "logins": 0,
        "tasks_created": 1,
        "tasks_completed": 1,
        "active_days": 2,
        "completed_on_time": 0,
        "completed_late": 0,
        "completed_undated": 1,
        "completed_by_priority": {"low": 0, "normal": 1, "high": 0},
    }
    async with UnitOfWork(app_state(app).session_factory) as uow:
        letters = await AnalyticsRepository(uow.session).dead_letters()
    assert len(letters) == 2
    assert {letter.event_id for letter in letters} == {poison_missing_task.id, None}
    assert all(letter.deliveries == 3 for letter in letters)  # dead_letter_after_deliveries
    assert all(letter.stream == TASK_STREAM for letter in letters)
    assert sample("momentum_analytics_dead_letters_total", stream=TASK_STREAM) == dead_before + 2

    async def lag_is_zero() -> None:
        metrics = (await client.get("/metrics")).text
        lag = 'momentum_consumer_pending{durable="analytics",service="analytics",stream="%s"} 0.0'
        assert lag % TASK_STREAM in metrics
        assert "momentum_analytics_dead_letters_total" in metrics
        nats = (await client.get("/readyz")).json()["checks"]["nats"]
        assert nats["streams"][TASK_STREAM]["pending"] == 0

    await eventually(lag_is_zero)


async def test_replicas_share_the_durable_and_apply_each_event_once(
    settings_factory: Callable[..., AnalyticsSettings],
    issuer: TestIssuer,
    clock: FixedClock,
    nats_url: str,
) -> None:
    clock.now = at("2026-11-30T12:00:00Z")
    settings = settings_factory(consumer_batch_size=7)
    replicas = [create_app(settings, jwks_client=issuer.client(), clock=clock) for _ in range(3)]
    users = [uuid.uuid4() for _ in range(3)]
    tasks = [uuid.uuid4() for _ in range(5)]
    events = []
    for index in range(120):
        user = users[index % 3]
        when = at("2026-11-23T00:00:00Z").replace(hour=index % 24, minute=index % 60)
        when = when.replace(day=23 + index % 7)
        zone = ["Europe/Berlin", "America/New_York", "Pacific/Kiritimati"][index % 3]
        if index % 3 == 0:
            events.append(logged_in(user, when, usertz=zone))
        elif index % 3 == 1:
            events.append(created(user, when, tasks[index % 5], usertz=zone))
        else:
            events.append(completed(user, when, tasks[index % 5], usertz=zone))
    published = events + events[::3]  # every third event delivered twice
    async with (
        running_app(replicas[0]) as client,
        running_app(replicas[1]),
        running_app(replicas[2]),
    ):
        await publish(nats_url, published)
        await wait_drained(nats_url)
        reference = Reference([as_reference(event) for event in published])
        for user in users:
            body = await report(client, issuer, user, "2026-W48")
            expected = reference.weekly_report(
                user, at("2026-11-23T00:00:00Z").date(), clock.now.date()
            )
            assert {key: body[key] for key in expected} == expected
        async with UnitOfWork(app_state(replicas[0]).session_factory) as uow:
            letters = await AnalyticsRepository(uow.session).dead_letters()
        assert letters == []


async def test_metrics_name_the_dead_letters_payload(
    app: FastAPI, client: httpx.AsyncClient, nats_url: str, feed: Feed
) -> None:
    # Payloads that are not JSON objects still become readable dead letters.
    await feed([], raw=[("auth.user.logged_in", json.dumps([1, 2]).encode())])
    async with UnitOfWork(app_state(app).session_factory) as uow:
        letters = await AnalyticsRepository(uow.session).dead_letters()
    assert [(letter.subject, letter.payload) for letter in letters] == [
        ("auth.user.logged_in", b"[1, 2]")
    ]
    assert "CloudEvent" in letters[0].error


async def test_a_message_failing_inside_a_batch_does_not_hold_back_the_others(
    app: FastAPI,
    client: httpx.AsyncClient,
    issuer: TestIssuer,
    clock: FixedClock,
    nats_url: str,
) -> None:
    """The batch's transaction rolls back; its messages are retried one by one, once each."""
    clock.now = at("2026-11-26T12:00:00Z")
    user = uuid.uuid4()
    # Valid envelope and data, but its local date (year 1, west of UTC) cannot be computed.
    unplaceable = logged_in(user, at("0001-01-01T01:00:00Z"), usertz="America/New_York")
    before = logged_in(user, at("2026-11-24T09:00:00Z"), usertz="UTC")
    after = logged_in(user, at("2026-11-25T09:00:00Z"), usertz="UTC")
    await publish(nats_url, [before, unplaceable, after, before])
    await wait_drained(nats_url)
    body = await report(client, issuer, user, "2026-W48")
    assert body["totals"]["logins"] == 2
    assert body["streaks"]["login"]["longest"] == 2
    async with UnitOfWork(app_state(app).session_factory) as uow:
        letters = await AnalyticsRepository(uow.session).dead_letters()
    assert [letter.event_id for letter in letters] == [unplaceable.id]
    assert "OverflowError" in letters[0].error


async def test_the_consumer_survives_a_nats_restart(
    settings_factory: Callable[..., AnalyticsSettings],
    issuer: TestIssuer,
    clock: FixedClock,
    nats_server_factory: type[EmbeddedNats],
    tmp_path: Path,
) -> None:
    clock.now = at("2026-11-26T12:00:00Z")
    server = nats_server_factory(tmp_path / "nats-restart").start()
    app = create_app(
        settings_factory(nats_url=server.url), jwks_client=issuer.client(), clock=clock
    )
    user = uuid.uuid4()
    async with running_app(app) as client:
        await publish(server.url, [logged_in(user, at("2026-11-24T09:00:00Z"), usertz="UTC")])
        await wait_drained(server.url)
        await asyncio.to_thread(server.stop)

        async def disconnected() -> None:
            response = await client.get("/readyz")
            assert response.status_code == 200
            assert response.json()["checks"]["nats"]["status"] == "degraded"

        await eventually(disconnected)
        assert (await report(client, issuer, user, "2026-W48"))["totals"]["logins"] == 1
        await asyncio.to_thread(server.start)
        await publish(server.url, [logged_in(user, at("2026-11-25T09:00:00Z"), usertz="UTC")])
        await wait_drained(server.url)
        body = await report(client, issuer, user, "2026-W48")
        assert body["totals"]["logins"] == 2
        assert body["streaks"]["login"]["longest"] == 2


async def publish_poison_beside_a_good_login(
    app: FastAPI,
    client: httpx.AsyncClient,
    issuer: TestIssuer,
    clock: FixedClock,
    nats_url: str,
    **poison: str,
) -> list[Any]:
    """Publish one good login and one login with ``poison`` fields, drain the stream,
    check the good one counted, and return the dead letters."""
    clock.now = at("2026-11-26T12:00:00Z")
    user = uuid.uuid4()
    good = logged_in(user, at("2026-11-24T09:00:00Z"), usertz="UTC")
    envelope = json.loads(logged_in(user, at("2026-11-24T10:00:00Z"), usertz="UTC").to_json())
    envelope.update(poison)
    await publish(nats_url, [good], raw=[("auth.user.logged_in", json.dumps(envelope).encode())])
    await wait_drained(nats_url, timeout=20.0)
    body = await report(client, issuer, user, "2026-W48")
    assert body["totals"]["logins"] == 1
    async with UnitOfWork(app_state(app).session_factory) as uow:
        return list(await AnalyticsRepository(uow.session).dead_letters())


async def test_an_event_whose_time_cannot_be_read_in_utc_is_dead_lettered(
    app: FastAPI,
    client: httpx.AsyncClient,
    issuer: TestIssuer,
    clock: FixedClock,
    nats_url: str,
) -> None:
    """Its decoding fails outside validation (the instant is before year 1 in UTC), yet it is
    parked like any poison instead of failing its whole batch on every redelivery."""
    letters = await publish_poison_beside_a_good_login(
        app, client, issuer, clock, nats_url, time="0001-01-01T00:00:00+14:00"
    )
    assert len(letters) == 1
    assert json.loads(letters[0].payload)["time"] == "0001-01-01T00:00:00+14:00"


@pytest.mark.parametrize(
    ("event_id", "stored_id"),
    [("bad\u0000id", "bad\ufffdid"), ("x" * 201, "x" * 200)],
    ids=["nul", "too-long"],
)
async def test_an_event_id_the_inbox_cannot_hold_is_dead_lettered_on_every_database(
    app: FastAPI,
    client: httpx.AsyncClient,
    issuer: TestIssuer,
    clock: FixedClock,
    nats_url: str,
    event_id: str,
    stored_id: str,
) -> None:
    """PostgreSQL text cannot hold NUL, and the inbox keeps ids of at most 200 characters:
    such an id is poison on both databases, and its dead letter still fits."""
    letters = await publish_poison_beside_a_good_login(
        app, client, issuer, clock, nats_url, id=event_id
    )
    assert [letter.event_id for letter in letters] == [stored_id]
    assert json.loads(letters[0].payload)["id"] == event_id  # the payload is kept as sent
