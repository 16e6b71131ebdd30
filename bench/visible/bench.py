"""Write → visible: from a completion's response to the first weekly report that counts it.

Starts a real stack on 127.0.0.1 (an embedded NATS on its own port; auth, tasks and
analytics served as Momentum serves them, each on its own database; the gateway), with the
tasks relay and the analytics consumer running as ``make up`` runs them (inside the web
processes; ``--relay standalone`` runs the relay as ``momentum-tasks relay`` instead, so on
PostgreSQL only LISTEN/NOTIFY wakes it). A user is signed in at auth, tasks are seeded, and
while ``--writes-per-s`` background writes (creates and updates, alternately, through the
gateway) run, each sample:

1. ``POST /tasks/{id}/complete`` through the gateway; the clock starts when its response
   has been read;
2. ``GET /analytics/reports/weekly`` through the gateway, again ``--poll-ms`` after each
   answer that does not count the completion yet; the clock stops when the first answer
   that counts it has been read. Nothing is subtracted.

In the same run, for the same events, the stages on the way: when a core NATS subscriber
sees the relay's publish, and when a JetStream pull consumer of the benchmark's own (the
shared runner, with analytics' fetch settings, on a durable of its own) receives it, both
from the same starting moment. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from momentum_devtools.benchmarking import (
    ROOT,
    MomentumServer,
    database_url,
    emit,
    free_port,
    log,
    machine,
    request_json,
    standard_arguments,
    workdir,
)

SERVICES = ("auth", "tasks", "analytics")
PASSWORD = "benchmark password 1234"
TARGET_P50_MS = 30.0
TARGET_P99_MS = 100.0
SAMPLE_TIMEOUT_SECONDS = 10.0
# A request of the benchmark (a report poll, a completion, a background write) that takes
# longer than this is a failure of the stack, reported as such.
REQUEST_TIMEOUT_SECONDS = 30.0
MEASURED = (
    "per sample: from the moment the response of POST /tasks/{id}/complete (through the"
    " gateway) has been read to the moment the first GET /analytics/reports/weekly answer"
    " (through the gateway) whose totals.tasks_completed counts it has been read; the report"
    " is asked again poll_ms after each answer that does not count it yet; nothing is"
    " subtracted (the figure includes the last report request's round trip and the poll"
    " interval)"
)
STAGES = {
    "on_nats_ms": "the relay's publish seen by a core NATS subscriber (can be negative: the"
    " relay may publish before the client has read the completion's response)",
    "consumer_receive_ms": "the event returned by fetch to a JetStream pull consumer of the"
    " benchmark's own (the shared runner, analytics' batch size and fetch timeout, a durable"
    " of its own on TASK_EVENTS)",
}


class Process:
    """A program of the stack that is not a web server (the standalone relay)."""

    def __init__(self, name: str, argv: list[str], *, env: dict[str, str], logdir: Path) -> None:
        self.name = name
        self.log_path = logdir / f"{name}.log"
        self.log_file = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            argv,
            env={**os.environ, **env},
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=ROOT,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log_file.close()


@dataclass
class Stack:
    directory: Path
    nats_admin_url: str = ""
    servers: dict[str, MomentumServer] = field(default_factory=dict)
    processes: dict[str, Process] = field(default_factory=dict)

    @property
    def gateway(self) -> str:
        return self.servers["gateway"].url

    def pids(self) -> dict[str, int]:
        return {
            **{name: server.pid for name, server in self.servers.items()},
            **{name: process.pid for name, process in self.processes.items()},
        }


@contextlib.contextmanager
def stack(args: argparse.Namespace) -> Iterator[Stack]:
    from momentum_devtools.natsserver import EmbeddedNats
    from momentum_shared.migrations import upgrade

    with workdir("momentum-bench-visible-") as directory, contextlib.ExitStack() as resources:
        running = Stack(directory)
        nats_server = resources.enter_context(EmbeddedNats(directory / "nats"))
        running.nats_admin_url = nats_server.admin_url
        urls = {
            name: resources.enter_context(database_url(args.db, name, directory))
            for name in SERVICES
        }
        for name, url in urls.items():
            upgrade(ROOT / "services" / name / "alembic.ini", url)
        gateway_port = free_port()
        auth_port = free_port()
        issuer = f"http://127.0.0.1:{gateway_port}"
        jwks_url = f"http://127.0.0.1:{auth_port}/.well-known/jwks.json"

        def service_env(name: str) -> dict[str, str]:
            prefix = f"MOMENTUM_{name.upper()}_"
            values = {
                "TOKEN_ISSUER": issuer,
                "JWKS_URL": jwks_url,
                "NATS_URL": nats_server.url,
                "NATS_USER": name,
                "NATS_PASSWORD": nats_server.passwords[name],
                "LOG_LEVEL": "WARNING",
            }
            if name in urls:
                values["DATABASE_URL"] = urls[name]
            env = {prefix + key: value for key, value in values.items()}
            env["FORWARDED_ALLOW_IPS"] = "" if name == "gateway" else "127.0.0.1"
            return env

        tasks_env = service_env("tasks")
        if args.relay == "standalone":
            tasks_env["MOMENTUM_TASKS_OUTBOX_RELAY_ENABLED"] = "false"
        try:
            auth = MomentumServer(
                "auth",
                "momentum_auth.app:create_app",
                port=auth_port,
                env={
                    **service_env("auth"),
                    "MOMENTUM_AUTH_ISSUER": issuer,
                    "MOMENTUM_AUTH_ACCESS_TOKEN_LIFETIME_SECONDS": "7200",
                    "MOMENTUM_AUTH_PASSWORD_MEMORY_COST_KIB": "8",
                    "MOMENTUM_AUTH_PASSWORD_TIME_COST": "1",
                },
                logdir=directory,
            )
            running.servers["auth"] = auth
            auth.wait_ready()
            running.servers["tasks"] = MomentumServer(
                "tasks", "momentum_tasks.app:create_app", env=tasks_env, logdir=directory
            )
            running.servers["analytics"] = MomentumServer(
                "analytics",
                "momentum_analytics.app:create_app",
                env=service_env("analytics"),
                logdir=directory,
            )
            if args.relay == "standalone":
                relay_env = {**tasks_env, "MOMENTUM_TASKS_OUTBOX_RELAY_ENABLED": "true"}
                running.processes["relay"] = Process(
                    "relay",
                    [sys.executable, "-m", "momentum_tasks.cli", "relay"],
                    env=relay_env,
                    logdir=directory,
                )
            running.servers["gateway"] = MomentumServer(
                "gateway",
                "momentum_gateway.app:create_app",
                port=gateway_port,
                env={
                    **service_env("gateway"),
                    "MOMENTUM_GATEWAY_AUTH_URL": auth.url,
                    "MOMENTUM_GATEWAY_TASKS_URL": running.servers["tasks"].url,
                    "MOMENTUM_GATEWAY_ANALYTICS_URL": running.servers["analytics"].url,
                    # One user makes all the traffic (hundreds of report polls a second):
                    # the per-user limits would measure themselves.
                    "MOMENTUM_GATEWAY_RATE_LIMIT_USER_PER_SECOND": "0",
                    "MOMENTUM_GATEWAY_RATE_LIMIT_ADDRESS_PER_SECOND": "0",
                    # Writes keep their schedule when the stack slows down: room for them.
                    "MOMENTUM_GATEWAY_MAX_IN_FLIGHT_PER_USER": "1024",
                    "MOMENTUM_GATEWAY_MAX_IN_FLIGHT_PER_ADDRESS": "1024",
                    "MOMENTUM_GATEWAY_METRICS_PORT": "0",
                },
                logdir=directory,
            )
            for name in ("tasks", "analytics", "gateway"):
                running.servers[name].wait_ready()
            yield running
        finally:
            for process in running.processes.values():
                process.stop()
            for server in reversed(list(running.servers.values())):
                server.stop()


@dataclass
class Seeded:
    token: str
    to_complete: list[str]
    to_update: list[str]


def seed(running: Stack, *, completions: int, updates: int) -> Seeded:
    """A user, an access token, the tasks to complete and to update; the pipeline drained."""
    auth = running.servers["auth"].url
    tasks = running.servers["tasks"].url
    email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
    status, body = request_json(
        "POST",
        f"{auth}/auth/register",
        body={"email": email, "password": PASSWORD, "display_name": "Bench"},
    )
    assert status == 201, body
    status, body = request_json(
        "POST",
        f"{auth}/auth/token",
        form={
            "grant_type": "password",
            "username": email,
            "password": PASSWORD,
            "scope": "profile tasks:read tasks:write analytics:read",
        },
    )
    assert status == 200, body
    token = body["access_token"]
    ids = []
    for number in range(completions + updates):
        status, body = request_json("POST", f"{tasks}/tasks", token, {"title": f"task {number}"})
        assert status == 201, body
        ids.append(body["id"])
    # Every creation reaches the report before the clock runs: the pipeline starts idle.
    deadline = time.monotonic() + 60
    report: Any = None
    while time.monotonic() < deadline:
        status, report = request_json("GET", f"{running.gateway}/analytics/reports/weekly", token)
        assert status == 200, report
        if report["totals"]["tasks_created"] >= len(ids):
            break
        time.sleep(0.1)
    else:
        raise SystemExit(f"the seeded tasks are not in the weekly report after 60 s: {report}")
    return Seeded(token, ids[:completions], ids[completions:])


def quantile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank quantile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def summary(values: Sequence[float]) -> dict[str, Any]:
    def ms(value: float | None) -> float | None:
        return None if value is None else round(value, 2)

    return {
        "p50_ms": ms(quantile(values, 0.50)),
        "p90_ms": ms(quantile(values, 0.90)),
        "p99_ms": ms(quantile(values, 0.99)),
        "max_ms": ms(max(values) if values else None),
        "samples": len(values),
    }


@dataclass
class Writes:
    done: int = 0
    errors: int = 0
    started: float = 0.0
    stopped: float = 0.0
    latencies: list[float] = field(default_factory=list)

    @property
    def per_s(self) -> float:
        elapsed = self.stopped - self.started
        return self.done / elapsed if elapsed > 0 else 0.0


async def background_writes(
    session: Any, base: str, seeded: Seeded, rate: float, writes: Writes, stop: asyncio.Event
) -> None:
    """``rate`` writes a second on a fixed schedule, creates and updates alternately."""
    in_flight: set[asyncio.Task[None]] = set()

    async def one(number: int) -> None:
        began = time.perf_counter()
        try:
            if number % 2 == 0 or not seeded.to_update:
                response = await session.post(
                    f"{base}/tasks", json={"title": f"background {number}", "tags": ["bench"]}
                )
            else:
                task_id = seeded.to_update[number % len(seeded.to_update)]
                response = await session.patch(
                    f"{base}/tasks/{task_id}", json={"title": f"updated {number}"}
                )
            async with response:
                await response.read()
                ok = response.status in (200, 201)
        except Exception:
            ok = False
        if ok:
            writes.done += 1
            writes.latencies.append((time.perf_counter() - began) * 1000)
        else:
            writes.errors += 1

    writes.started = time.perf_counter()
    number = 0
    while not stop.is_set():
        task = asyncio.create_task(one(number))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
        number += 1
        delay = writes.started + number / rate - time.perf_counter()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=max(0.0, delay))
    if in_flight:
        await asyncio.wait(in_flight)
    writes.stopped = time.perf_counter()


@dataclass
class Sample:
    request_ms: float
    visible_ms: float | None
    polls: int
    on_nats_ms: float | None = None
    consumer_receive_ms: float | None = None


class Probes:
    """When each completion event was seen on NATS (core) and fetched by a pull consumer."""

    def __init__(self, admin_url: str, durable: str) -> None:
        self.admin_url = admin_url
        self.durable = durable
        self.on_nats: dict[str, float] = {}
        self.fetched: dict[str, float] = {}
        self._nc: Any = None
        self._task: asyncio.Task[None] | None = None
        self.consumer: Any = None

    @staticmethod
    def _task_id(payload: bytes) -> str | None:
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            data = json.loads(payload)
            if data.get("type") == "tasks.task.completed":
                value = data.get("data", {}).get("task_id")
                return str(value) if value else None
        return None

    async def start(self) -> None:
        from momentum_analytics.settings import AnalyticsSettings
        from momentum_shared.events import TASK_STREAM
        from momentum_shared.jetstream import ConsumerOptions, JetStreamConsumer
        from momentum_shared.nats import connect

        async def seen(message: Any) -> None:
            task_id = self._task_id(message.data)
            if task_id is not None:
                self.on_nats.setdefault(task_id, time.perf_counter())

        self._nc = await connect(self.admin_url, name="bench-visible-observer")
        await self._nc.subscribe("tasks.task.completed", cb=seen)
        await self._nc.flush()

        async def fetched(_stream: str, messages: Sequence[Any]) -> None:
            now = time.perf_counter()
            for message in messages:
                task_id = self._task_id(message.data)
                if task_id is not None:
                    self.fetched.setdefault(task_id, now)
                await message.ack()

        defaults = AnalyticsSettings.model_fields
        self.consumer = JetStreamConsumer(
            self.admin_url,
            (TASK_STREAM,),
            fetched,
            ConsumerOptions(
                durable=self.durable,
                batch_size=int(defaults["consumer_batch_size"].default),
                fetch_timeout=float(defaults["consumer_fetch_timeout_seconds"].default),
            ),
            service="bench",
        )
        self._task = asyncio.create_task(self.consumer.run())
        deadline = time.monotonic() + 30
        while self.consumer.status()["streams"][TASK_STREAM]["state"] != "consuming":
            if time.monotonic() > deadline:
                raise SystemExit(f"the probe consumer is not consuming: {self.consumer.status()}")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._nc is not None:
            await self._nc.close()


async def measure(args: argparse.Namespace, running: Stack, seeded: Seeded) -> dict[str, Any]:
    import aiohttp

    base = running.gateway
    probes = Probes(running.nats_admin_url, f"bench-visible-{uuid.uuid4().hex[:8]}")
    await probes.start()
    headers = {"Authorization": f"Bearer {seeded.token}"}
    connector = aiohttp.TCPConnector(limit=0)
    writes = Writes()
    stop = asyncio.Event()
    samples: list[Sample] = []
    poll_round_trips: list[float] = []
    poll = args.poll_ms / 1000
    rng = random.Random(7)
    # No request of the benchmark waits for ever: one the stack never answers fails the run
    # with its URL within REQUEST_TIMEOUT_SECONDS, not at aiohttp's five-minute default.
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS)
    async with (
        aiohttp.ClientSession(headers=headers, connector=connector, timeout=timeout) as session,
        aiohttp.ClientSession(headers=headers, timeout=timeout) as writer_session,
    ):

        async def completed_count() -> int:
            began = time.perf_counter()
            async with session.get(f"{base}/analytics/reports/weekly") as response:
                body = await response.json()
                if response.status != 200:
                    raise SystemExit(f"the weekly report answered {response.status}: {body}")
            poll_round_trips.append((time.perf_counter() - began) * 1000)
            return int(body["totals"]["tasks_completed"])

        counted = await completed_count()
        writer = asyncio.create_task(
            background_writes(writer_session, base, seeded, args.writes_per_s, writes, stop)
        )
        try:
            await asyncio.sleep(args.warmup)
            for number, task_id in enumerate(seeded.to_complete):
                sent = time.perf_counter()
                async with session.post(f"{base}/tasks/{task_id}/complete") as response:
                    await response.read()
                    assert response.status == 200, response.status
                answered = time.perf_counter()
                expected = counted + 1
                polls = 0
                visible: float | None = None
                while time.perf_counter() - answered < SAMPLE_TIMEOUT_SECONDS:
                    polls += 1
                    counted = await completed_count()
                    if counted >= expected:
                        visible = time.perf_counter()
                        break
                    await asyncio.sleep(poll)
                if visible is None:
                    log(f"sample {number}: not visible after {SAMPLE_TIMEOUT_SECONDS} s")
                samples.append(
                    Sample(
                        request_ms=(answered - sent) * 1000,
                        visible_ms=None if visible is None else (visible - answered) * 1000,
                        polls=polls,
                    )
                )
                # Every probe has seen it by now, or will within the pause below.
                await asyncio.sleep(rng.uniform(args.pause_ms[0], args.pause_ms[1]) / 1000)
                sample = samples[-1]
                for name, seen in (
                    ("on_nats_ms", probes.on_nats),
                    ("consumer_receive_ms", probes.fetched),
                ):
                    if task_id in seen:
                        setattr(sample, name, (seen[task_id] - answered) * 1000)
                if (number + 1) % 50 == 0:
                    done = [s.visible_ms for s in samples if s.visible_ms is not None]
                    log(f"{number + 1} samples, p50 so far {quantile(done, 0.5):.1f} ms")
        finally:
            stop.set()
            await writer
            await probes.stop()
    visible_ms = [s.visible_ms for s in samples if s.visible_ms is not None]
    p50 = quantile(visible_ms, 0.50)
    p99 = quantile(visible_ms, 0.99)
    missed = sum(1 for s in samples if s.visible_ms is None)
    stages = {
        name: {
            "what": what,
            **summary([value for s in samples if (value := getattr(s, name)) is not None]),
        }
        for name, what in STAGES.items()
    }
    stages["fetch_after_nats_ms"] = {
        "what": "consumer_receive_ms - on_nats_ms, sample by sample: how long the fetch held it",
        **summary(
            [
                s.consumer_receive_ms - s.on_nats_ms
                for s in samples
                if s.consumer_receive_ms is not None and s.on_nats_ms is not None
            ]
        ),
    }
    return {
        "measured": MEASURED,
        **summary(visible_ms),
        "missed": missed,
        "target": {"p50_ms": TARGET_P50_MS, "p99_ms": TARGET_P99_MS},
        "met": bool(visible_ms)
        and not missed
        and p50 is not None
        and p99 is not None
        and p50 <= TARGET_P50_MS
        and p99 <= TARGET_P99_MS,
        "background_writes": {
            "asked_per_s": args.writes_per_s,
            "achieved_per_s": round(writes.per_s, 2),
            "done": writes.done,
            "errors": writes.errors,
            "mix": "POST /tasks and PATCH /tasks/{id} alternately, through the gateway,"
            " by the same user",
            "latency": summary(writes.latencies),
        },
        "baseline": {
            "what": "the stages of the same samples, from the same moment (the completion's"
            " response): what lies between consumer_receive_ms and the total is analytics'"
            " batch transaction, its acks and the report read",
            **stages,
        },
        "completion_request": summary([s.request_ms for s in samples]),
        "report_request": summary(poll_round_trips),
        "polls_per_sample": quantile([float(s.polls) for s in samples], 0.5),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, help="completions measured (default 200; quick 5)")
    parser.add_argument("--writes-per-s", type=float, default=20.0)
    parser.add_argument("--poll-ms", type=float, default=2.0)
    parser.add_argument(
        "--relay",
        choices=("in-process", "standalone"),
        default="in-process",
        help="the tasks relay inside the tasks web process, as make up runs it (default), or"
        " as its own process (momentum-tasks relay; on PostgreSQL woken by LISTEN/NOTIFY)",
    )
    standard_arguments(parser)
    args = parser.parse_args()
    # run's timeout sends SIGTERM: stop the stack on the way out rather than orphan it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    samples = args.samples or (5 if args.quick else 200)
    args.warmup = 0.5 if args.quick else 2.0
    args.pause_ms = (20.0, 80.0)
    load_before = os.getloadavg()
    with stack(args) as running:
        seeded = seed(running, completions=samples, updates=20)
        log(f"{samples} samples with {args.writes_per_s:g} background writes/s ({args.db})")
        import uvloop

        figures = uvloop.run(measure(args, running, seeded))
    emit(
        {
            "benchmark": "visible",
            "db": args.db,
            "relay": args.relay,
            **figures,
            "config": {
                "poll_ms": args.poll_ms,
                "pause_between_samples_ms": list(args.pause_ms),
                "sample_timeout_s": SAMPLE_TIMEOUT_SECONDS,
                "server": "python -m momentum_shared.server (uvicorn, httptools, uvloop)",
                "relay": "inside the tasks web process (as make up)"
                if args.relay == "in-process"
                else "momentum-tasks relay, its own process",
                "consumer": "inside the analytics web process (as make up)",
                "load_average_before": [round(x, 2) for x in load_before],
            },
            "machine": machine(),
        }
    )


if __name__ == "__main__":
    main()
