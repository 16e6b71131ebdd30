"""Analytics ingestion: events/s the real consumer applies, against a raw fetch+ack of one stream.

Starts an embedded NATS and a migrated database of its own, publishes N valid CloudEvents
(``tasks.task.created`` for 200 users, and completions of some of those tasks) onto
TASK_EVENTS, then alternates rounds: a raw nats-py pull consumer (fetch(500) + ack, a fresh
durable each round) and the analytics ``EventConsumer`` (its own fresh durable, the
projections emptied before). After each analytics round the projection is checked against
what the events say, so the figure is of correct work. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from momentum_devtools.benchmarking import (
    ROOT,
    database_url,
    emit,
    log,
    machine,
    median,
    ratio,
    standard_arguments,
    workdir,
)

if TYPE_CHECKING:
    from momentum_devtools.natsserver import EmbeddedNats

ANALYTICS_INI = ROOT / "services" / "analytics" / "alembic.ini"
TARGETS = {"postgresql": 0.5, "sqlite": 0.3}
USERS = 200
RAW_BATCH = 500
ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo")


Events = list[tuple[str, bytes]]  # (subject, CloudEvent JSON)


def synthetic_events(count: int, *, seed: int = 11) -> tuple[Events, dict[str, int]]:
    """``count`` valid events (as the tasks service builds them) and what they must yield."""
    from momentum_shared.events import CloudEvent, TaskCompleted, TaskCreated

    rng = random.Random(seed)
    users = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(USERS)]
    zones = {user: ZONES[index % len(ZONES)] for index, user in enumerate(users)}
    start = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)
    open_tasks: list[tuple[uuid.UUID, uuid.UUID]] = []
    payloads: Events = []
    created = completed = 0
    for index in range(count):
        when = start + timedelta(minutes=7 * index)
        if open_tasks and rng.random() < 0.25:
            user, task = open_tasks.pop(rng.randrange(len(open_tasks)))
            completion = TaskCompleted(task_id=task, user_id=user, completed_at=when, due_at=None)
            event = CloudEvent.of(
                completion,
                source="/momentum/tasks",
                subject=str(user),
                usertz=zones[user],
                time=when,
            )
            completed += 1
        else:
            user = users[rng.randrange(USERS)]
            task = uuid.UUID(int=rng.getrandbits(128))
            creation = TaskCreated(
                task_id=task,
                user_id=user,
                priority="normal",
                due_at=None,
                created_at=when,
            )
            event = CloudEvent.of(
                creation, source="/momentum/tasks", subject=str(user), usertz=zones[user], time=when
            )
            open_tasks.append((user, task))
            created += 1
        payloads.append((event.type, event.to_json()))
    return payloads, {"events": count, "tasks_created": created, "tasks_completed": completed}


async def publish(nats_url: str, payloads: Events) -> None:
    from momentum_shared.events import CLOUDEVENTS_CONTENT_TYPE, TASK_STREAM
    from momentum_shared.nats import connect, ensure_stream

    nc = await connect(nats_url, name="bench-ingest-publisher")
    try:
        js = nc.jetstream()
        await ensure_stream(js, TASK_STREAM)
        for chunk in range(0, len(payloads), 500):
            acks = [
                js.publish(subject, payload, headers={"Content-Type": CLOUDEVENTS_CONTENT_TYPE})
                for subject, payload in payloads[chunk : chunk + 500]
            ]
            await asyncio.gather(*acks)
    finally:
        await nc.close()


async def raw_round(nats_url: str, count: int, durable: str) -> float:
    """A bare pull consumer: fetch(500), ack each message; events/s first to last ack."""
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

    from momentum_shared.events import TASK_STREAM
    from momentum_shared.nats import connect

    nc = await connect(nats_url, name="bench-ingest-raw")
    try:
        js = nc.jetstream()
        await js.add_consumer(
            TASK_STREAM,
            ConsumerConfig(
                name=durable,
                durable_name=durable,
                deliver_policy=DeliverPolicy.ALL,
                ack_policy=AckPolicy.EXPLICIT,
                max_ack_pending=1000,
            ),
        )
        subscription = await js.pull_subscribe_bind(durable=durable, stream=TASK_STREAM)
        seen = 0
        first: float | None = None
        deadline = time.monotonic() + 120.0
        while seen < count:
            if time.monotonic() > deadline:
                raise SystemExit(f"the raw consumer got {seen} of {count} events in 120 s")
            try:
                messages = await subscription.fetch(RAW_BATCH, timeout=1.0)
            except TimeoutError:
                continue
            if first is None:
                first = time.perf_counter()
            for message in messages:
                await message.ack()
            seen += len(messages)
        await nc.flush()  # every ack has reached the server
        elapsed = time.perf_counter() - (first or time.perf_counter())
        await subscription.unsubscribe()
        await js.delete_consumer(TASK_STREAM, durable)
        return count / elapsed if elapsed > 0 else 0.0
    finally:
        await nc.close()


async def analytics_round(
    db_url: str, nats: EmbeddedNats, count: int, durable: str, expected: dict[str, int]
) -> tuple[float, int]:
    """The service's consumer on a fresh durable; events/s from first fetch to last applied."""
    import sqlalchemy as sa
    from pydantic import SecretStr

    from momentum_analytics.consumer import EventConsumer
    from momentum_analytics.repository import AnalyticsRepository
    from momentum_analytics.settings import AnalyticsSettings
    from momentum_shared.db import UnitOfWork, create_engine, create_session_factory
    from momentum_shared.events import TASK_STREAM
    from momentum_shared.nats import connect

    engine = create_engine(db_url)
    factory = create_session_factory(engine)
    try:
        async with UnitOfWork(factory) as uow:
            await AnalyticsRepository(uow.session).clear_projections()
        # The service's own NATS user and permissions (whatever the environment says).
        settings = AnalyticsSettings(
            database_url=db_url,
            nats_url=nats.url,
            nats_user="analytics",
            nats_password=SecretStr(nats.passwords["analytics"]),
            consumer_durable=durable,
        )
        consumer = EventConsumer(factory, settings, streams=(TASK_STREAM,))
        handled = 0
        batches = 0
        first: float | None = None
        last = 0.0
        done = asyncio.Event()
        handle = consumer.runner.handler

        async def timed(stream: str, messages: Any) -> None:
            nonlocal handled, batches, first, last
            if first is None:
                first = time.perf_counter()
            await handle(stream, messages)
            last = time.perf_counter()
            handled += len(messages)
            batches += 1
            if handled >= count:
                done.set()

        consumer.runner.handler = timed
        task = asyncio.create_task(consumer.run())
        try:
            await asyncio.wait_for(done.wait(), timeout=max(120.0, count / 20))
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        # The projection must hold exactly what the events say.
        async with engine.connect() as connection:
            inbox = (
                await connection.execute(sa.text("SELECT count(*) FROM processed_events"))
            ).scalar_one()
            totals = (
                await connection.execute(
                    sa.text(
                        "SELECT coalesce(sum(tasks_created), 0), coalesce(sum(tasks_completed), 0)"
                        " FROM daily_activity"
                    )
                )
            ).one()
        got = {
            "events": int(inbox),
            "tasks_created": int(totals[0]),
            "tasks_completed": int(totals[1]),
        }
        if got != expected:
            raise SystemExit(f"the projection is wrong after ingestion: {got} != {expected}")
        nc = await connect(nats.admin_url, name="bench-ingest-cleanup")
        try:
            await nc.jetstream().delete_consumer(TASK_STREAM, durable)
        finally:
            await nc.close()
        elapsed = last - (first or last)
        return (count / elapsed if elapsed > 0 else 0.0), batches
    finally:
        await engine.dispose()


async def measure(
    db_url: str, nats: EmbeddedNats, payloads: Events, expected: dict[str, int], rounds: int
) -> dict[str, Any]:
    nats_url = nats.admin_url
    count = len(payloads)
    log(f"publishing {count} events for {USERS} users")
    await publish(nats_url, payloads)
    raw: list[float] = []
    ingest: list[float] = []
    batch_counts: list[int] = []
    for round_no in range(rounds):
        sides = ["raw", "analytics"] if round_no % 2 == 0 else ["analytics", "raw"]
        for side in sides:
            durable = f"bench-{side}-{round_no}"
            if side == "raw":
                rate = await raw_round(nats_url, count, durable)
                raw.append(rate)
            else:
                rate, batches = await analytics_round(db_url, nats, count, durable, expected)
                ingest.append(rate)
                batch_counts.append(batches)
            log(f"round {round_no + 1} {side}: {rate:.0f} events/s")
    return {"raw": raw, "analytics": ingest, "batches": batch_counts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    standard_arguments(parser)
    parser.add_argument("--events", type=int, help="events published (default 20000; quick 500)")
    parser.add_argument("--rounds", type=int, help="alternated rounds (default 3; quick 1)")
    args = parser.parse_args()
    count = args.events or (500 if args.quick else 20_000)
    rounds = args.rounds or (1 if args.quick else 3)

    from momentum_devtools.natsserver import EmbeddedNats
    from momentum_shared.migrations import upgrade

    payloads, expected = synthetic_events(count)
    with (
        workdir("momentum-bench-ingest-") as directory,
        EmbeddedNats(directory / "nats") as nats_server,
        database_url(args.db, "analytics", directory) as db_url,
    ):
        upgrade(ANALYTICS_INI, db_url)
        figures = asyncio.run(measure(db_url, nats_server, payloads, expected, rounds))
    raw_rate = median(figures["raw"])
    ingest_rate = median(figures["analytics"])
    value = ratio(ingest_rate, raw_rate)
    target = TARGETS[args.db]
    emit(
        {
            "benchmark": "ingest",
            "db": args.db,
            "events": count,
            "users": USERS,
            "rounds": rounds,
            "analytics_events_per_s": round(ingest_rate, 1),
            "raw_events_per_s": round(raw_rate, 1),
            "baseline": "raw nats-py pull consumer, fetch(500) + ack, same stream",
            "ratio": value,
            "target": target,
            "met": value is not None and value >= target,
            "rounds_raw": [round(rate, 1) for rate in figures["raw"]],
            "rounds_analytics": [round(rate, 1) for rate in figures["analytics"]],
            "analytics_batches": figures["batches"],
            "expected": expected,
            "machine": machine(),
        }
    )


if __name__ == "__main__":
    main()
