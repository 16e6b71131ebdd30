"""The tasks migrations build exactly the models' tables, and they are reversible."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from momentum_devtools.testing.databases import DatabaseTemplates, schema_differences
from momentum_shared.db import UtcDateTime
from momentum_shared.migrations import downgrade, upgrade
from momentum_tasks.models import NO_DUE_DATE, Task, TaskOwner, TasksBase

ALEMBIC_INI = Path(__file__).resolve().parents[1] / "alembic.ini"
TASKS: sa.Table = Task.__table__  # type: ignore[attr-defined]
OWNERS: sa.Table = TaskOwner.__table__  # type: ignore[attr-defined]
TASKS_TABLES = {
    "tasks",
    "task_tags",
    "idempotency_keys",
    "projects",
    "task_owners",
    "task_tombstones",
}


def table_names(connection: Connection) -> set[str]:
    return set(sa.inspect(connection).get_table_names())


async def test_models_match_the_migrations(database_url: str) -> None:
    assert await schema_differences(database_url, TasksBase.metadata) == []


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_the_migrations_downgrade_and_upgrade_again(
    database_templates: DatabaseTemplates, tmp_path: Path, dialect: str
) -> None:
    with database_templates.database(ALEMBIC_INI, dialect, tmp_path) as url:

        async def tables() -> set[str]:
            engine = create_async_engine(url)
            try:
                async with engine.connect() as connection:
                    return await connection.run_sync(table_names)
            finally:
                await engine.dispose()

        assert asyncio.run(tables()) >= TASKS_TABLES | {"outbox"}
        downgrade(ALEMBIC_INI, url)
        assert not (TASKS_TABLES | {"outbox"}) & asyncio.run(tables())
        upgrade(ALEMBIC_INI, url)
        assert asyncio.run(tables()) >= TASKS_TABLES | {"outbox"}


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_tasks_made_before_the_changes_feed_get_distinct_change_numbers(
    database_templates: DatabaseTemplates, tmp_path: Path, dialect: str
) -> None:
    owners = [uuid.uuid4(), uuid.uuid4()]
    created = datetime(2026, 11, 30, tzinfo=UTC)
    with database_templates.database(ALEMBIC_INI, dialect, tmp_path) as url:
        downgrade(ALEMBIC_INI, url, "tasks0004")

        async def insert_tasks() -> None:
            engine = create_async_engine(url)
            try:
                async with engine.begin() as connection:
                    for index in range(5):
                        await connection.execute(
                            sa.text(
                                "INSERT INTO tasks (id, owner_id, title, title_folded, status,"
                                " priority, due_sort, tags, created_at, updated_at, version)"
                                " VALUES (:id, :owner, 't', 't', 'open', 'normal', :due, '[]',"
                                " :created, :created, 1)"
                            ).bindparams(
                                sa.bindparam("id", type_=sa.Uuid),
                                sa.bindparam("owner", type_=sa.Uuid),
                                sa.bindparam("due", type_=UtcDateTime),
                                sa.bindparam("created", type_=UtcDateTime),
                            ),
                            {
                                "id": uuid.uuid4(),
                                "owner": owners[index % 2],
                                "due": NO_DUE_DATE,
                                "created": created,  # the same instant: ties broken by id
                            },
                        )
            finally:
                await engine.dispose()

        async def numbers() -> tuple[dict[uuid.UUID, list[int]], dict[uuid.UUID, int]]:
            engine = create_async_engine(url)
            try:
                async with engine.connect() as connection:
                    rows = (
                        await connection.execute(sa.select(TASKS.c.owner_id, TASKS.c.change_seq))
                    ).all()
                    marks = (
                        await connection.execute(sa.select(OWNERS.c.owner_id, OWNERS.c.last_seq))
                    ).all()
            finally:
                await engine.dispose()
            per_owner: dict[uuid.UUID, list[int]] = {}
            for owner_id, change_seq in rows:
                per_owner.setdefault(owner_id, []).append(change_seq)
            return per_owner, {row[0]: row[1] for row in marks}

        asyncio.run(insert_tasks())
        upgrade(ALEMBIC_INI, url)
        per_owner, last = asyncio.run(numbers())
    assert sorted(per_owner[owners[0]]) == [1, 2, 3]
    assert sorted(per_owner[owners[1]]) == [1, 2]
    assert last == {owners[0]: 3, owners[1]: 2}
