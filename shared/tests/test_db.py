"""The unit of work commits on success and rolls back on error, on SQLite and PostgreSQL; on
PostgreSQL the engine also runs with asyncpg's statement caches off (behind a pooler)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from momentum_devtools.testing.databases import require_postgres
from momentum_devtools.testing.resources import asyncpg_url, created_database
from momentum_shared.db import (
    UnitOfWork,
    create_engine,
    create_session_factory,
    execute,
    is_sqlite,
)

notes = sa.Table(
    "notes",
    sa.MetaData(),
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("body", sa.String(100), nullable=False),
)


@pytest.fixture
def database_url(blank_database_url: str) -> str:
    return blank_database_url


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        await connection.run_sync(notes.metadata.create_all)
    yield engine
    await engine.dispose()


async def count(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int(
            (await connection.execute(sa.select(sa.func.count()).select_from(notes))).scalar_one()
        )


async def test_commits_when_the_block_succeeds(engine: AsyncEngine) -> None:
    async with UnitOfWork(create_session_factory(engine)) as uow:
        await uow.session.exec(notes.insert().values(id=str(uuid.uuid4()), body="kept"))
    assert await count(engine) == 1


async def test_rolls_back_when_the_block_raises(engine: AsyncEngine) -> None:
    async def write_then_fail() -> None:
        async with UnitOfWork(create_session_factory(engine)) as uow:
            await uow.session.exec(notes.insert().values(id=str(uuid.uuid4()), body="lost"))
            await uow.session.flush()
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await write_then_fail()
    assert await count(engine) == 0


async def test_explicit_commit_is_not_repeated(engine: AsyncEngine) -> None:
    async with UnitOfWork(create_session_factory(engine)) as uow:
        await uow.session.exec(notes.insert().values(id=str(uuid.uuid4()), body="once"))
        await uow.commit()
    assert await count(engine) == 1


def test_dialect_detection() -> None:
    assert is_sqlite("sqlite+aiosqlite:///x.db")
    assert not is_sqlite("postgresql+asyncpg://u@h/db")


class Commits:
    """Counts the COMMITs the engine's connections issue."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.count = 0
        sa.event.listen(engine.sync_engine, "commit", self._on_commit)

    def _on_commit(self, _connection: sa.Connection) -> None:
        self.count += 1


async def test_a_block_that_only_reads_does_not_commit(engine: AsyncEngine) -> None:
    commits = Commits(engine)
    async with UnitOfWork(create_session_factory(engine)) as uow:
        await execute(uow.session, sa.select(notes.c.id))
        await execute(uow.session, sa.select(sa.func.count()).select_from(notes))
    assert commits.count == 0


async def test_a_block_that_writes_after_reading_commits_once(engine: AsyncEngine) -> None:
    commits = Commits(engine)
    async with UnitOfWork(create_session_factory(engine)) as uow:
        await execute(uow.session, sa.select(notes.c.id))
        await uow.session.exec(notes.insert().values(id=str(uuid.uuid4()), body="kept"))
    assert commits.count == 1
    assert await count(engine) == 1


async def test_a_read_after_a_write_elsewhere_still_does_not_commit(engine: AsyncEngine) -> None:
    session_factory = create_session_factory(engine)
    async with UnitOfWork(session_factory) as uow:
        await uow.session.exec(notes.insert().values(id=str(uuid.uuid4()), body="kept"))
    commits = Commits(engine)
    async with UnitOfWork(session_factory) as uow:
        await execute(uow.session, sa.select(notes.c.id))
    assert commits.count == 0


async def test_a_block_that_never_touches_the_database_does_not_commit(
    engine: AsyncEngine,
) -> None:
    commits = Commits(engine)
    async with UnitOfWork(create_session_factory(engine)):
        pass
    assert commits.count == 0


async def test_a_failed_write_after_a_read_rolls_back(engine: AsyncEngine) -> None:
    commits = Commits(engine)

    async def read_write_then_fail() -> None:
        async with UnitOfWork(create_session_factory(engine)) as uow:
            await execute(uow.session, sa.select(notes.c.id))
            await uow.session.exec(notes.insert().values(id=str(uuid.uuid4()), body="lost"))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await read_write_then_fail()
    assert commits.count == 0
    assert await count(engine) == 0


# --- asyncpg's statement caches, off for a transaction-mode pooler ----------------------------


@pytest.fixture
def postgres_url(postgres_admin_url: str | None, run_id: str, tmp_path: Path) -> Iterator[str]:
    require_postgres(postgres_admin_url)
    assert postgres_admin_url is not None
    name = f"momentum_test_db_{run_id}_{uuid.uuid4().hex[:8]}"
    with created_database(postgres_admin_url, name) as url:
        yield asyncpg_url(url)


async def _notes_engine(url: str, *, statement_cache: bool) -> AsyncEngine:
    engine = create_engine(url, pool_size=1, statement_cache=statement_cache)
    async with engine.begin() as connection:
        await connection.run_sync(notes.metadata.create_all)
    return engine


async def _widen_body_elsewhere(url: str) -> None:
    """Another client (a migration on another pod) changes the table under the engine."""
    other = create_engine(url, pool_size=1)
    try:
        async with other.begin() as connection:
            await connection.execute(sa.text("ALTER TABLE notes ALTER COLUMN body TYPE text"))
    finally:
        await other.dispose()


async def _read_bodies(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as connection:
        result = await connection.execute(sa.text("SELECT body FROM notes ORDER BY body"))
        return [str(row[0]) for row in result]


async def test_without_the_statement_cache_the_driver_keeps_no_prepared_statement(
    postgres_url: str,
) -> None:
    engine = await _notes_engine(postgres_url, statement_cache=False)
    try:
        async with UnitOfWork(create_session_factory(engine)) as uow:
            await uow.session.exec(notes.insert().values(id=str(uuid.uuid4()), body="a"))
        assert await count(engine) == 1
        async with engine.connect() as connection:
            raw = await connection.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            # asyncpg's own cache, and SQLAlchemy's cache in its asyncpg adapter: both off.
            assert driver._stmt_cache.get_max_size() == 0
            assert raw.dbapi_connection._prepared_statement_cache is None  # type: ignore[union-attr]
            # What PostgreSQL still holds for this session once the statements ran (but the
            # statement asking, prepared as it runs).
            await connection.execute(sa.select(notes.c.id))
            held = await connection.execute(
                sa.text(
                    "SELECT count(*) FROM pg_prepared_statements"
                    " WHERE statement NOT LIKE '%pg_prepared_statements%'"
                )
            )
            assert held.scalar_one() == 0
    finally:
        await engine.dispose()


async def test_without_the_statement_cache_reads_survive_a_schema_change_elsewhere(
    postgres_url: str,
) -> None:
    """Through a pooler the next transaction may land on a server connection whose statements
    another client changed; nothing cached means nothing stale."""
    engine = await _notes_engine(postgres_url, statement_cache=False)
    try:
        async with engine.begin() as connection:
            await connection.execute(notes.insert().values(id=str(uuid.uuid4()), body="kept"))
        assert await _read_bodies(engine) == ["kept"]
        await _widen_body_elsewhere(postgres_url)
        assert await _read_bodies(engine) == ["kept"]
    finally:
        await engine.dispose()


async def test_with_the_statement_cache_a_schema_change_elsewhere_fails_the_next_read(
    postgres_url: str,
) -> None:
    """The default keeps prepared statements, which is what the setting turns off."""
    engine = await _notes_engine(postgres_url, statement_cache=True)
    try:
        async with engine.begin() as connection:
            await connection.execute(notes.insert().values(id=str(uuid.uuid4()), body="kept"))
        assert await _read_bodies(engine) == ["kept"]
        await _widen_body_elsewhere(postgres_url)
        with pytest.raises(DBAPIError, match="cached statement plan is invalid"):
            await _read_bodies(engine)
    finally:
        await engine.dispose()


async def test_a_burst_of_connections_is_kept_for_the_next_one(database_url: str) -> None:
    """Up to twice the pool size are opened when a burst needs them, and none is closed when
    they come back: the next burst opens nothing (no thread, no login, per request)."""
    engine = create_engine(database_url, pool_size=2)
    opened: list[object] = []
    sa.event.listen(engine.sync_engine, "connect", lambda dbapi, _record: opened.append(dbapi))
    try:

        async def burst() -> None:
            connections = [await engine.connect() for _ in range(4)]
            for connection in connections:
                await connection.execute(sa.text("SELECT 1"))
            for connection in connections:
                await connection.close()

        await burst()
        assert len(opened) == 4
        await burst()
        assert len(opened) == 4
    finally:
        await engine.dispose()
