"""NATS goes away: the API keeps accepting writes; NATS returns: every event lands exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import nats
import sqlalchemy as sa
from fastapi import FastAPI

from momentum_devtools.natsserver import EmbeddedNats
from momentum_devtools.testing.apps import running_app
from momentum_devtools.testing.issuer import TestIssuer
from momentum_shared.events import TASK_STREAM, CloudEvent
from momentum_shared.metrics import REGISTRY
from momentum_tasks.app import create_app
from momentum_tasks.models import OUTBOX
from momentum_tasks.settings import TasksSettings
from momentum_tasks.state import app_state
from services.tasks.tests.support import Headers


async def stream_event_ids(url: str) -> list[str]:
    """The CloudEvent id of every message in TASK_EVENTS, in stream order."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(TASK_STREAM)
        ids = []
        if info.state.messages:
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                message = await js.get_msg(TASK_STREAM, seq)
                assert message.headers is not None
                event = CloudEvent.from_json(message.data or b"")
                assert message.headers["Nats-Msg-Id"] == event.id
                ids.append(event.id)
        return ids
    finally:
        await nc.close()


async def outbox_state(app: FastAPI) -> tuple[list[str], int]:
    async with app_state(app).engine.connect() as connection:
        ids = (await connection.execute(sa.select(OUTBOX.c.id))).scalars().all()
        pending = (
            await connection.execute(
                sa.select(sa.func.count())
                .select_from(OUTBOX)
                .where(OUTBOX.c.published_at.is_(None))
            )
        ).scalar_one()
    return list(ids), int(pending)


async def eventually(condition: Callable[[], Awaitable[bool]], *, timeout: float = 30.0) -> None:
    """Poll until true; the timeout only keeps a broken build from hanging."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await condition():
        if loop.time() > deadline:
            raise AssertionError("condition never held")
        await asyncio.sleep(0.05)


async def test_writes_survive_a_nats_outage_and_every_event_arrives_once(
    database_url: str,
    nats_server_factory: type[EmbeddedNats],
    tmp_path: Path,
    issuer: TestIssuer,
    alice: Headers,
) -> None:
    server = nats_server_factory(tmp_path / "nats")
    server.start()
    settings = TasksSettings.model_validate(
        {
            "database_url": database_url,
            "environment": "test",
            "log_json": False,
            "nats_url": server.url,
            "outbox_relay_enabled": True,
            "outbox_poll_interval_seconds": 0.05,
        }
    )
    app = create_app(settings, jwks_client=issuer.client())
    async with running_app(app) as client:

        async def create(count: int, label: str) -> list[str]:
            ids = []
            for index in range(count):
                response = await client.post(
                    "/tasks", json={"title": f"{label} {index}"}, headers=alice
                )
                assert response.status_code == 201
                ids.append(response.json()["id"])
            return ids

        async def drained() -> bool:
            return (await outbox_state(app))[1] == 0

        async def nats_status() -> dict[str, object]:
            body = (await client.get("/readyz")).json()
            status: dict[str, object] = body["checks"]["nats"]
            return status

        first = await create(5, "before")
        await eventually(drained)

        server.stop()

        async def disconnected() -> bool:
            return (await nats_status())["connected"] is False

        await eventually(disconnected)
        during = await create(10, "during")
        task = during[0]
        edited = await client.patch(f"/tasks/{task}", json={"title": "edited"}, headers=alice)
        assert edited.status_code == 200
        assert (await client.post(f"/tasks/{task}/complete", headers=alice)).status_code == 200
        ready = await client.get("/readyz")
        assert ready.status_code == 200  # NATS down never makes the service unready
        assert (await outbox_state(app))[1] == 12

        async def backlog_exported() -> bool:
            status = await nats_status()
            metric = REGISTRY.get_sample_value("momentum_outbox_backlog", {"service": "tasks"})
            return status["backlog"] == 12 and metric == 12

        await eventually(backlog_exported)

        server.start()  # same port, same store directory
        after = await create(3, "after")
        await eventually(drained)
        assert (await nats_status())["connected"] is True
        outbox_ids, _ = await outbox_state(app)

    published = await stream_event_ids(server.url)
    assert len(first + during + after) == 18
    assert len(outbox_ids) == 18 + 2
    assert sorted(published) == sorted(outbox_ids)
    assert len(published) == len(set(published))


async def test_a_write_wakes_the_relay_instead_of_waiting_for_the_next_poll(
    database_url: str, nats_url: str, issuer: TestIssuer, alice: Headers
) -> None:
    settings = TasksSettings.model_validate(
        {
            "database_url": database_url,
            "environment": "test",
            "log_json": False,
            "nats_url": nats_url,
            "outbox_relay_enabled": True,
            "outbox_poll_interval_seconds": 3600,  # only a wake-up can publish within this test
        }
    )
    app = create_app(settings, jwks_client=issuer.client())
    async with running_app(app) as client:

        async def connected() -> bool:
            status = (await client.get("/readyz")).json()["checks"]["nats"]
            return bool(status["connected"] and status["streams_ready"])

        await eventually(connected)
        response = await client.post("/tasks", json={"title": "now"}, headers=alice)
        assert response.status_code == 201

        async def drained() -> bool:
            return (await outbox_state(app))[1] == 0

        await eventually(drained)
    assert len(await stream_event_ids(nats_url)) == 1
