"""The unit of work commits on success and rolls back on error, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

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
