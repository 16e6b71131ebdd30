"""Every Momentum program turns tracing on from ``OTEL_*`` at start and exports its spans at exit.

The programs run as processes, as an operator runs them, on PostgreSQL (their statements are
spans of the asyncpg instrumentation), with the SDK's console exporter: each finished span is
a JSON document on the program's standard output. The batch
processor's delay is set far beyond the program's life, so what is printed was exported by
the flush at exit.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import nats
import pytest
from nats.js.errors import NotFoundError
from sqlalchemy.ext.asyncio import create_async_engine

from momentum_devtools.natsserver import EmbeddedNats
from momentum_devtools.testing.databases import require_postgres
from momentum_devtools.testing.resources import asyncpg_url, created_database
from momentum_shared.events import TASK_STREAM, CloudEvent, TaskReopened
from momentum_shared.migrations import upgrade
from momentum_tasks.models import OutboxEvent

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
# What the console exporter prints for each span: its context's trace id.
TRACE_ID = re.compile(r'"trace_id": "0x([0-9a-f]{32})"')

COMMANDS = {
    "auth": ["momentum-auth", "locks", "list"],
    "tasks": ["momentum-tasks", "purge-idempotency-keys"],
    "analytics": ["momentum-analytics", "dead-letters"],
}


Migrated = Callable[[str], str]


@pytest.fixture
def migrated(postgres_admin_url: str | None, run_id: str) -> Iterator[Migrated]:
    """A fresh database of ``service``'s, migrated to head; its URL."""
    require_postgres(postgres_admin_url)
    assert postgres_admin_url is not None
    with ExitStack() as databases:

        def create(service: str) -> str:
            name = f"momentum_otel_{service}_{run_id}_{uuid.uuid4().hex[:6]}"
            url = asyncpg_url(databases.enter_context(created_database(postgres_admin_url, name)))
            upgrade(ROOT / "services" / service / "alembic.ini", url)
            return url

        yield create


def program_env(service: str, database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env[f"MOMENTUM_{service.upper()}_DATABASE_URL"] = database_url
    env["OTEL_BSP_SCHEDULE_DELAY"] = "600000"  # only the flush at exit exports
    env.update(extra)
    return env


async def stream_created(admin_url: str, stream: str, program: subprocess.Popen[str]) -> None:
    connection = await nats.connect(admin_url)
    try:
        js = connection.jetstream()
        while program.poll() is None:
            try:
                await js.stream_info(stream)
                return
            except NotFoundError:
                await asyncio.sleep(0.1)
    finally:
        await connection.close()


WRITER_TRACE = "ab" * 16
OUTBOX = OutboxEvent.__table__


async def write_traced_row(url: str) -> None:
    """An outbox row as a traced request leaves it: with its writer's trace context."""
    user = uuid.uuid4()
    event = CloudEvent.of(
        TaskReopened(task_id=uuid.uuid4(), user_id=user),
        source="/momentum/tasks",
        subject=str(user),
    )
    context = {"traceparent": f"00-{WRITER_TRACE}-{'cd' * 8}-01"}
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                OUTBOX.insert().values(
                    id=event.id,
                    subject=event.type,
                    payload=event.to_json(),
                    created_at=event.time,
                    available_at=event.time,
                    trace_context=json.dumps(context),
                )
            )
    finally:
        await engine.dispose()


async def stream_holds_a_message(
    admin_url: str, stream: str, program: subprocess.Popen[str]
) -> None:
    connection = await nats.connect(admin_url)
    try:
        js = connection.jetstream()
        while program.poll() is None and (await js.stream_info(stream)).state.messages == 0:
            await asyncio.sleep(0.1)
    finally:
        await connection.close()


def spans_in(output: str) -> list[dict[str, object]]:
    """The span documents the console exporter printed (log lines and the result aside)."""
    decoder = json.JSONDecoder()
    spans, position = [], 0
    while (start := output.find("{\n", position)) != -1:
        document, position = decoder.raw_decode(output, start)
        if isinstance(document, dict) and "context" in document:
            spans.append(document)
    return spans


@pytest.mark.parametrize("service", sorted(COMMANDS))
def test_an_operator_command_prints_its_spans_with_trace_ids_before_it_exits(
    migrated: Migrated, service: str
) -> None:
    url = migrated(service)
    program, *arguments = COMMANDS[service]
    completed = subprocess.run(
        [str(VENV_BIN / program), *arguments],
        env=program_env(service, url, OTEL_TRACES_EXPORTER="console"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    spans = spans_in(completed.stdout)
    assert spans, completed.stdout[-3000:]
    assert TRACE_ID.search(completed.stdout)
    resource = spans[0]["resource"]
    assert isinstance(resource, dict)
    assert resource["attributes"]["service.name"] == f"momentum-{service}"


def test_an_operator_command_prints_no_span_when_no_exporter_is_named(migrated: Migrated) -> None:
    url = migrated("tasks")
    completed = subprocess.run(
        [str(VENV_BIN / "momentum-tasks"), "purge-idempotency-keys"],
        env=program_env("tasks", url),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert completed.stdout == "deleted 0 idempotency keys\n"


def test_the_standalone_relay_exports_its_spans_when_it_is_stopped(
    tmp_path: Path, migrated: Migrated
) -> None:
    url = migrated("tasks")
    with EmbeddedNats(tmp_path / "nats") as nats_server:
        env = program_env(
            "tasks",
            url,
            OTEL_TRACES_EXPORTER="console",
            OTEL_SERVICE_NAME="tasks-relay",
            MOMENTUM_TASKS_NATS_URL=nats_server.url,
            MOMENTUM_TASKS_NATS_USER="tasks",
            MOMENTUM_TASKS_NATS_PASSWORD=nats_server.passwords["tasks"],
        )
        with (tmp_path / "relay.out").open("w+") as out:
            relay = subprocess.Popen(
                [str(VENV_BIN / "momentum-tasks"), "relay"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )
            try:
                # A row written in a traced request: the relay publishes it in a span of that
                # trace (its own polling makes none), which must be exported at the signal.
                asyncio.run(stream_created(nats_server.admin_url, TASK_STREAM, relay))
                asyncio.run(write_traced_row(url))
                asyncio.run(stream_holds_a_message(nats_server.admin_url, TASK_STREAM, relay))
            finally:
                relay.send_signal(signal.SIGTERM)
                code = relay.wait(timeout=30)
            output = Path(out.name).read_text()
    assert code == 0, output[-3000:]
    spans = spans_in(output)
    assert spans, output[-3000:]
    assert TRACE_ID.search(output)
    assert {span["resource"]["attributes"]["service.name"] for span in spans} == {"tasks-relay"}  # type: ignore[index]
    assert [span["name"] for span in spans] == ["publish tasks.task.reopened"]
    assert {span["context"]["trace_id"] for span in spans} == {f"0x{WRITER_TRACE}"}  # type: ignore[index]
