"""The shared test fixtures hand out real, private PostgreSQL databases and NATS servers."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import asyncpg
import nats
import pytest

from momentum_devtools.natsserver import EmbeddedNats
from momentum_devtools.testing.databases import DatabaseTemplates
from momentum_devtools.testing.resources import plain_postgres_url, resolve_postgres, with_database
from momentum_shared.nats import ensure_stream

AUTH_INI = Path(__file__).resolve().parents[2] / "services/auth/alembic.ini"


def test_postgres_is_resolved_from_the_environment_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOMENTUM_TEST_POSTGRES_URL", "postgresql+asyncpg://u:p@db.example:5432/x")
    server = resolve_postgres()
    assert server.origin == "MOMENTUM_TEST_POSTGRES_URL"
    assert server.url == "postgresql://u:p@db.example:5432/x"


def test_url_helpers() -> None:
    assert plain_postgres_url("postgresql+asyncpg://a@h/d") == "postgresql://a@h/d"
    assert (
        with_database("postgresql://a@h:1/d?sslmode=off", "e") == "postgresql://a@h:1/e?sslmode=off"
    )


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_each_test_gets_a_fresh_migrated_database(
    database_templates: DatabaseTemplates, dialect: str, tmp_path: Path
) -> None:
    with database_templates.database(AUTH_INI, dialect, tmp_path) as first:
        pass
    with database_templates.database(AUTH_INI, dialect, tmp_path / "again") as second:
        assert first != second
        if dialect == "postgresql":
            tables = asyncio.run(_tables(second))
            assert "outbox" in tables
            assert "alembic_version" in tables
    if dialect == "postgresql":
        assert not asyncio.run(_exists(second))


async def _tables(url: str) -> set[str]:
    conn = await asyncpg.connect(plain_postgres_url(url))
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await conn.close()
    return {row["tablename"] for row in rows}


async def _exists(url: str) -> bool:
    name = url.rsplit("/", 1)[1]
    admin = with_database(plain_postgres_url(url), "postgres")
    conn = await asyncpg.connect(admin)
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()


async def test_nats_url_has_jetstream_and_our_streams(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await ensure_stream(js, "TASK_EVENTS")
        await ensure_stream(js, "TASK_EVENTS")  # the second start finds it, never fails
        ack = await js.publish("tasks.task.created", b"{}", headers={"Nats-Msg-Id": "one"})
        dup = await js.publish("tasks.task.created", b"{}", headers={"Nats-Msg-Id": "one"})
        assert ack.stream == "TASK_EVENTS"
        assert dup.duplicate
        info = await js.stream_info("TASK_EVENTS")
        assert info.state.messages == 1
        assert info.config.subjects == ["tasks.>"]
    finally:
        await nc.close()


def test_embedded_nats_stops_cleanly(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path / "nats").start()
    assert server.process is not None
    pid = server.process.pid
    server.stop()
    assert server.process.poll() is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
