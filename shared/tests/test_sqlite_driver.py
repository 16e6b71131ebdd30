"""SQLite through aiosqlite: one call into aiosqlite's thread per statement, nothing lost.

Each call into that thread is a round trip of the event loop through a queue and a wake-up
(docs/adr/0011-data-access.md); these tests count them where a request would feel them, and
check that transactions still commit, roll back and report errors as before.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from momentum_shared.db import create_engine


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'one-hop.db'}")
    async with engine.begin() as connection:
        await connection.exec_driver_sql(
            "CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)"
        )
        await connection.exec_driver_sql("INSERT INTO item (name) VALUES ('first')")
    yield engine
    await engine.dispose()


class Hops:
    """Counts the calls queued to aiosqlite's thread."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        queue = aiosqlite.Connection._execute

        async def counted(connection: aiosqlite.Connection, fn: object, *a: object) -> object:
            self.count += 1
            return await queue(connection, fn, *a)  # type: ignore[no-untyped-call]

        monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)


async def test_a_read_and_the_end_of_its_checkout_are_one_call_into_aiosqlites_thread(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with engine.connect() as warm:  # the pool's connection, opened before counting
        await warm.execute(sa.text("SELECT 1"))
    hops = Hops(monkeypatch)
    async with engine.connect() as connection:
        rows = (await connection.execute(sa.text("SELECT id, name FROM item"))).all()
    assert [tuple(row) for row in rows] == [(1, "first")]
    # Cursor, execute, fetch and close in one call; no ROLLBACK where nothing was begun.
    assert hops.count == 1


async def test_a_write_commits_and_a_rolled_back_one_leaves_nothing(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        inserted = await connection.execute(
            sa.text("INSERT INTO item (name) VALUES ('kept') RETURNING id")
        )
        assert inserted.scalar_one() == 2
        # The transaction sees its own write.
        count = await connection.execute(sa.text("SELECT count(*) FROM item"))
        assert count.scalar_one() == 2
    async with engine.connect() as connection:
        await connection.execute(sa.text("INSERT INTO item (name) VALUES ('dropped')"))
        await connection.rollback()
    async with engine.connect() as connection:
        names = (await connection.execute(sa.text("SELECT name FROM item ORDER BY id"))).all()
    assert [row.name for row in names] == ["first", "kept"]


async def test_rows_changed_and_new_ids_are_reported(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        result = await connection.execute(
            sa.text("INSERT INTO item (name) VALUES (:name)"), [{"name": "a"}, {"name": "b"}]
        )
        assert result.rowcount == 2
        result = await connection.execute(sa.text("UPDATE item SET name = name || '!'"))
        assert result.rowcount == 3
        table = sa.table("item", sa.column("id"), sa.column("name"))
        result = await connection.execute(sa.insert(table).values(name="c"))
        assert result.lastrowid == 4


async def test_a_failed_statement_raises_and_its_transaction_is_rolled_back(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as connection:
        await connection.execute(sa.text("INSERT INTO item (name) VALUES ('before the error')"))
        with pytest.raises(IntegrityError):
            await connection.execute(sa.text("INSERT INTO item (name) VALUES ('first')"))
        await connection.rollback()
    async with engine.connect() as connection:
        names = (await connection.execute(sa.text("SELECT name FROM item"))).all()
    assert [row.name for row in names] == ["first"]


async def test_streamed_rows_arrive_and_a_streamed_write_still_commits(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as connection:
        await connection.exec_driver_sql(
            "INSERT INTO item (name) SELECT 'n' || value FROM json_each('[1,2,3,4,5]')"
        )
    async with engine.connect() as connection:
        streamed = await connection.stream(sa.text("SELECT name FROM item ORDER BY id"))
        names = [row.name async for row in streamed]
    assert names == ["first", "n1", "n2", "n3", "n4", "n5"]
    async with engine.begin() as connection:
        streamed = await connection.stream(
            sa.text("UPDATE item SET name = 'streamed' WHERE id = 1 RETURNING id")
        )
        assert [row.id async for row in streamed] == [1]
    async with engine.connect() as connection:
        first = await connection.execute(sa.text("SELECT name FROM item WHERE id = 1"))
        assert first.scalar_one() == "streamed"


async def test_a_read_sessions_statement_is_one_call_and_changes_no_isolation_level(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sessions of read routes (ReadSessionDep) cost SQLite nothing more than the read."""
    from momentum_shared.db import read_session_factory
    from momentum_shared.sqlite_driver import OneHopConnection

    changed: list[object] = []
    level: property = inspect.getattr_static(OneHopConnection, "isolation_level")

    def record(connection: OneHopConnection, value: str | None) -> None:
        changed.append(value)
        assert level.fset is not None
        level.fset(connection, value)

    monkeypatch.setattr(OneHopConnection, "isolation_level", property(level.fget, record))
    async with engine.connect() as warm:
        await warm.execute(sa.text("SELECT 1"))
    hops = Hops(monkeypatch)
    async with read_session_factory(engine)() as session:
        connection = await session.connection()
        names = (await connection.execute(sa.text("SELECT name FROM item"))).all()
    assert [row.name for row in names] == ["first"]
    assert hops.count == 1
    assert changed == []
