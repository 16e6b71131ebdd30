"""The tasks migrations build exactly the models' tables, and they are reversible."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from momentum_devtools.testing.databases import DatabaseTemplates, schema_differences
from momentum_devtools.testing.resources import asyncpg_url, created_database
from momentum_shared.db import UtcDateTime
from momentum_shared.migrations import downgrade, upgrade
from momentum_tasks.models import NO_DUE_DATE, Task, TaskOwner, TasksBase
from momentum_tasks.repository import TaskRepository
from momentum_tasks.schemas import TaskFilters, TaskSort

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


# The search index: objects the database maintains, compared here because alembic does not
# see them (SQLite's FTS5 table and triggers) or sees only part of them (the generated column's
# expression, the index's method).
SEARCH_OBJECTS = {
    "sqlite": (
        "SELECT type, name, tbl_name, sql FROM sqlite_master"
        " WHERE name LIKE 'tasks_search%' ORDER BY type, name"
    ),
    "postgresql": (
        "SELECT column_name, data_type, is_generated, generation_expression"
        " FROM information_schema.columns"
        " WHERE table_name = 'tasks' AND column_name = 'search_vector'"
        " UNION ALL SELECT indexname, indexdef, '', '' FROM pg_indexes"
        " WHERE tablename = 'tasks' AND indexname = 'ix_tasks_search_vector'"
    ),
}


async def search_objects(url: str) -> list[tuple[object, ...]]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            query = SEARCH_OBJECTS[connection.dialect.name]
            return [tuple(row) for row in (await connection.execute(sa.text(query))).all()]
    finally:
        await engine.dispose()


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_a_schema_made_from_the_models_has_the_search_index_of_the_migrations(
    database_templates: DatabaseTemplates, tmp_path: Path, dialect: str
) -> None:
    async def create_all(url: str) -> None:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as connection:
                await connection.run_sync(TasksBase.metadata.create_all)
        finally:
            await engine.dispose()

    with contextlib.ExitStack() as stack:
        migrated = stack.enter_context(database_templates.database(ALEMBIC_INI, dialect, tmp_path))
        if dialect == "sqlite":
            created = f"sqlite+aiosqlite:///{tmp_path / 'created.db'}"
        else:
            assert database_templates.postgres_admin_url is not None
            name = f"momentum_test_{uuid.uuid4().hex[:16]}"
            admin = database_templates.postgres_admin_url
            created = asyncpg_url(stack.enter_context(created_database(admin, name)))
        asyncio.run(create_all(created))
        expected = asyncio.run(search_objects(migrated))
        # SQLite: the FTS5 table, its four shadow tables and three triggers.
        assert len(expected) == (8 if dialect == "sqlite" else 2)
        assert asyncio.run(search_objects(created)) == expected
        assert asyncio.run(schema_differences(created, TasksBase.metadata)) == []


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_tasks_made_before_search_existed_are_found_after_the_upgrade(
    database_templates: DatabaseTemplates, tmp_path: Path, dialect: str
) -> None:
    owner, other = uuid.uuid4(), uuid.uuid4()
    created = datetime(2026, 11, 30, tzinfo=UTC)
    with database_templates.database(ALEMBIC_INI, dialect, tmp_path) as url:
        downgrade(ALEMBIC_INI, url, "tasks0005")
        rows = [
            (owner, "Running shoes", None),
            (owner, "Buy milk", "before the planning meeting"),
            (owner, "Call mum", None),
            (other, "Running club", "planning"),
        ]

        async def insert_tasks() -> None:
            engine = create_async_engine(url)
            try:
                async with engine.begin() as connection:
                    for index, (owner_id, title, description) in enumerate(rows):
                        await connection.execute(
                            sa.insert(TASKS).values(
                                id=uuid.uuid4(),
                                owner_id=owner_id,
                                title=title,
                                title_folded=title.lower(),
                                description=description,
                                status="open",
                                priority="normal",
                                due_sort=NO_DUE_DATE,
                                tags=[],
                                created_at=created,
                                updated_at=created,
                                version=1,
                                change_seq=index + 1,
                            )
                        )
            finally:
                await engine.dispose()

        async def found(search: str) -> set[str]:
            engine = create_async_engine(url)
            try:
                async with AsyncSession(engine) as session:
                    repo = TaskRepository(session)
                    page = await repo.list(
                        owner_id=owner,
                        filters=TaskFilters(search=search),
                        sort=TaskSort.relevance,
                        after=None,
                        limit=10,
                    )
                    return {row.title for row in page}
            finally:
                await engine.dispose()

        asyncio.run(insert_tasks())
        upgrade(ALEMBIC_INI, url)
        assert asyncio.run(found("run")) == {"Running shoes"}
        assert asyncio.run(found("plan")) == {"Buy milk"}
        assert asyncio.run(found("mum")) == {"Call mum"}
        downgrade(ALEMBIC_INI, url, "tasks0005")
        assert asyncio.run(search_objects(url)) == []
