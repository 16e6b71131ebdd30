"""Per-task order: several relays drain a backlog in any order; each event says its place."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import httpx
import nats
from fastapi import FastAPI
from nats.js.errors import NotFoundError

from momentum_shared.events import TASK_STREAM, CloudEvent
from momentum_shared.outbox import OutboxRelay, RelaySettings
from momentum_tasks.models import OUTBOX
from momentum_tasks.publishing import STREAMS
from momentum_tasks.state import app_state
from services.tasks.tests.support import Headers, NewTask

TASKS = 30
LIFECYCLE = [
    "tasks.task.created",
    "tasks.task.updated",
    "tasks.task.updated",
    "tasks.task.completed",
    "tasks.task.reopened",
    "tasks.task.deleted",
]


async def live_a_lifecycle(client: httpx.AsyncClient, alice: Headers, task_id: str) -> None:
    for body in ({"title": "renamed"}, {"priority": "high"}):
        assert (
            await client.patch(f"/tasks/{task_id}", json=body, headers=alice)
        ).status_code == 200
    assert (await client.post(f"/tasks/{task_id}/complete", headers=alice)).status_code == 200
    assert (await client.post(f"/tasks/{task_id}/reopen", headers=alice)).status_code == 200
    assert (await client.delete(f"/tasks/{task_id}", headers=alice)).status_code == 204


async def stream_events(url: str) -> list[CloudEvent]:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        try:
            info = await js.stream_info(TASK_STREAM)
        except NotFoundError:
            return []  # no relay has created it yet
        return [
            CloudEvent.from_json((await js.get_msg(TASK_STREAM, seq)).data or b"")
            for seq in range(info.state.first_seq, info.state.last_seq + 1)
        ]
    finally:
        await nc.close()


async def test_events_carry_their_place_among_the_tasks_events_whatever_relays_publish_them(
    app: FastAPI, client: httpx.AsyncClient, alice: Headers, new_task: NewTask, nats_url: str
) -> None:
    # The app's own relay cannot reach NATS (its URL goes nowhere): a backlog builds up.
    ids = [(await new_task(alice, title=f"task {n}"))["id"] for n in range(TASKS)]
    await asyncio.gather(*(live_a_lifecycle(client, alice, task_id) for task_id in ids))

    # Three relays drain it side by side in small batches, as replicas do after an outage
    # (on SQLite one of them holds the lease and the others stand by).
    settings = RelaySettings(nats_url=nats_url, batch_size=7, poll_interval_seconds=0.02)
    relays = [
        OutboxRelay(
            app_state(app).session_factory,
            OUTBOX,
            service="tasks",
            streams=STREAMS,
            settings=settings,
        )
        for _ in range(3)
    ]
    runs = [asyncio.create_task(relay.run()) for relay in relays]
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while len(events := await stream_events(nats_url)) < TASKS * len(LIFECYCLE):
            assert loop.time() < deadline, f"{len(events)} events published"
            await asyncio.sleep(0.1)
    finally:
        for run in runs:
            run.cancel()
        await asyncio.gather(*runs, return_exceptions=True)
        for relay in relays:
            await relay.aclose()

    by_task: dict[str, list[CloudEvent]] = defaultdict(list)
    for event in events:
        assert event.partitionkey is not None, event
        assert event.sequence is not None, event
        by_task[event.partitionkey].append(event)
    assert sorted(by_task) == sorted(f"task/{task_id}" for task_id in ids)
    for key, task_events in by_task.items():
        in_order = sorted(task_events, key=lambda event: event.sequence or "")
        # Numbered 1, 2, 3… without a gap or a repeat, and that order is the changes'.
        assert [int(event.sequence or 0) for event in in_order] == list(
            range(1, len(LIFECYCLE) + 1)
        ), key
        assert [event.type for event in in_order] == LIFECYCLE, key
        assert all(event.data["task_id"] == key.removeprefix("task/") for event in in_order)
        updates = [event for event in in_order if event.type == "tasks.task.updated"]
        assert [event.data["version"] for event in updates] == [2, 3]
        assert all(len(event.sequence or "") == 20 for event in in_order)
