"""The JetStream pull-consumer runner against a real nats-server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import pytest
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig
from nats.js.errors import NotFoundError

from momentum_devtools.natsserver import free_port
from momentum_shared.events import AUTH_STREAM, TASK_STREAM
from momentum_shared.jetstream import ConsumerOptions, JetStreamConsumer
from momentum_shared.metrics import REGISTRY
from momentum_shared.nats import connect, ensure_stream

FAST = ConsumerOptions(
    durable="runner-test", fetch_timeout=0.2, retry_interval=0.1, lag_interval=0.1
)


class Collector:
    """A batch handler that records and acks what it gets."""

    def __init__(self) -> None:
        self.received: list[tuple[str, bytes]] = []

    async def __call__(self, stream: str, messages: Sequence[Msg]) -> None:
        for message in messages:
            self.received.append((stream, message.data))
            await message.ack()


@contextlib.asynccontextmanager
async def running(consumer: JetStreamConsumer) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(consumer.run())
    try:
        yield task
    finally:
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=1.0)


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


@pytest.mark.nats
async def test_the_durable_is_updated_then_consumed_and_its_lag_measured(nats_url: str) -> None:
    nc = await connect(nats_url, name="runner-test")
    js = nc.jetstream()
    try:
        await ensure_stream(js, TASK_STREAM)
        await js.add_consumer(
            TASK_STREAM,
            ConsumerConfig(durable_name="runner-test", max_ack_pending=3, filter_subject="tasks.>"),
        )
        for index in range(5):
            await js.publish("tasks.task.created", f"m{index}".encode())
        collector = Collector()
        consumer = JetStreamConsumer(nats_url, [TASK_STREAM], collector, FAST, service="test")
        async with running(consumer):

            async def all_received() -> bool:
                return len(collector.received) == 5

            await until(all_received)
            info = await js.consumer_info(TASK_STREAM, "runner-test")
            assert info.config.max_ack_pending == FAST.max_ack_pending  # updated, not ignored

            async def lag_is_zero() -> bool:
                status = consumer.status()["streams"][TASK_STREAM]
                return bool(status["pending"] == 0 and status["ack_pending"] == 0)

            await until(lag_is_zero)
        assert collector.received == [(TASK_STREAM, f"m{index}".encode()) for index in range(5)]
        labels = {"service": "test", "durable": "runner-test", "stream": TASK_STREAM}
        assert REGISTRY.get_sample_value("momentum_consumer_pending", labels) == 0.0
    finally:
        await nc.close()


@pytest.mark.nats
async def test_a_missing_stream_is_waited_for(nats_url: str) -> None:
    collector = Collector()
    consumer = JetStreamConsumer(nats_url, [AUTH_STREAM], collector, FAST, service="test")
    async with running(consumer):

        async def waiting() -> bool:
            return bool(consumer.status()["streams"][AUTH_STREAM]["state"] == "waiting for stream")

        await until(waiting)
        assert consumer.status()["connected"] is True
        nc = await connect(nats_url, name="runner-test")
        try:
            js = nc.jetstream()
            await ensure_stream(js, AUTH_STREAM)
            await js.publish("auth.user.logged_in", b"late")

            async def received() -> bool:
                return collector.received == [(AUTH_STREAM, b"late")]

            await until(received)
        finally:
            await nc.close()


async def test_nats_down_is_reported_not_raised() -> None:
    consumer = JetStreamConsumer(
        f"nats://127.0.0.1:{free_port()}", [AUTH_STREAM], Collector(), FAST, service="test"
    )
    async with running(consumer) as task:

        async def reported() -> bool:
            return "last_error" in consumer.status()

        # The failed connect is in the status, and the runner keeps retrying rather than
        # ending with the error.
        await until(reported)
        assert consumer.status()["connected"] is False
        assert not task.done()


@pytest.mark.nats
async def test_replay_feeds_a_stream_from_its_start_and_cleans_up(nats_url: str) -> None:
    nc = await connect(nats_url, name="runner-test")
    js = nc.jetstream()
    try:
        await ensure_stream(js, TASK_STREAM)
        for index in range(7):
            await js.publish("tasks.task.completed", f"r{index}".encode())
        collector = Collector()
        consumer = JetStreamConsumer(nats_url, [TASK_STREAM], collector, FAST, service="test")
        assert await consumer.replay(js, TASK_STREAM) == 7
        assert [data for _, data in collector.received] == [f"r{i}".encode() for i in range(7)]
        assert await js.consumers_info(TASK_STREAM) == []  # the ephemeral consumer is gone
        assert await consumer.replay(js, AUTH_STREAM) == 0  # no such stream yet
    finally:
        await nc.close()


class Batches(Collector):
    """A collector that also records the size of each batch it is handed."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int] = []

    async def __call__(self, stream: str, messages: Sequence[Msg]) -> None:
        self.sizes.append(len(messages))
        await super().__call__(stream, messages)


# A fetch timeout far longer than any wait below: were a lone message, or the rest of a
# backlog, to wait for it, the test would time out instead.
PATIENT = ConsumerOptions(
    durable="runner-test", batch_size=10, fetch_timeout=60.0, retry_interval=0.1
)


@pytest.mark.nats
async def test_a_lone_message_is_handed_over_at_once_and_a_backlog_in_full_batches(
    nats_url: str,
) -> None:
    nc = await connect(nats_url, name="runner-test")
    js = nc.jetstream()
    try:
        await ensure_stream(js, TASK_STREAM)
        collector = Batches()
        consumer = JetStreamConsumer(nats_url, [TASK_STREAM], collector, PATIENT, service="test")
        async with running(consumer):

            async def consuming() -> bool:
                return bool(consumer.status()["streams"][TASK_STREAM]["state"] == "consuming")

            await until(consuming)
            await asyncio.sleep(0.2)  # the consumer is now idle, waiting in a fetch
            await js.publish("tasks.task.created", b"lone")

            async def lone_received() -> bool:
                return len(collector.received) == 1

            await until(lone_received, timeout=10.0)
            assert collector.sizes == [1]

            # A backlog larger than a batch: fetched batch after batch, never idle-waiting.
            for index in range(35):
                await js.publish("tasks.task.created", f"b{index}".encode())

            async def backlog_received() -> bool:
                return len(collector.received) == 36

            await until(backlog_received, timeout=10.0)
            assert max(collector.sizes) <= PATIENT.batch_size
            assert [data for _, data in collector.received] == [
                b"lone",
                *(f"b{index}".encode() for index in range(35)),
            ]
    finally:
        await nc.close()


@pytest.mark.nats
async def test_messages_fetched_ahead_go_back_when_the_consumer_stops(nats_url: str) -> None:
    """The next batch is fetched while one is handled; stopping returns it unhandled."""
    nc = await connect(nats_url, name="runner-test")
    js = nc.jetstream()
    release = asyncio.Event()
    handled: list[bytes] = []

    async def slow(stream: str, messages: Sequence[Msg]) -> None:
        await release.wait()  # stopped while the first batch is still being handled
        for message in messages:
            handled.append(message.data)
            await message.ack()

    try:
        await ensure_stream(js, TASK_STREAM)
        for index in range(20):
            await js.publish("tasks.task.created", f"p{index}".encode())
        consumer = JetStreamConsumer(nats_url, [TASK_STREAM], slow, PATIENT, service="test")
        async with running(consumer):

            async def both_fetched() -> bool:
                try:
                    info = await js.consumer_info(TASK_STREAM, PATIENT.durable)
                except NotFoundError:
                    return False
                return bool(info.num_ack_pending == 20)

            await until(both_fetched)
        assert handled == []
        # The batch fetched ahead went back at once (nak): another replica gets it now,
        # while the one cancelled mid-handling waits for its ack_wait, like any crash.
        collector = Collector()
        replica = JetStreamConsumer(nats_url, [TASK_STREAM], collector, PATIENT, service="test")
        async with running(replica):

            async def handed_back() -> bool:
                return len(collector.received) == 10

            await until(handed_back, timeout=10.0)
        assert [data for _, data in collector.received] == [
            f"p{index}".encode() for index in range(10, 20)
        ]
    finally:
        await nc.close()
