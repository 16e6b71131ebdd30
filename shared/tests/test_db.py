"""The unit of work commits on success and rolls back on error, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from momentum_shared.db import UnitOfWork, create_engine, create_session_factory, is_sqlite
from momentum_shared.testing.databases import require_postgres
from momentum_shared.testing.resources import asyncpg_url, created_database

notes = sa.Table(
    "notes",
    sa.MetaData(),
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("body", sa.String(100), nullable=False),
)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_admin_url: str | None, run_id: str
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'uow.db'}"
        return
    require_postgres(postgres_admin_url)
    assert postgres_admin_url is not None
    name = f"momentum_test_uow_{run_id}_{uuid.uuid4().hex[:8]}"
    with created_database(postgres_admin_url, name) as url:
        yield asyncpg_url(url)


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
