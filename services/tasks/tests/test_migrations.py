"""The tasks migrations build exactly the models' tables, and they are reversible."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from momentum_devtools.testing.databases import DatabaseTemplates, schema_differences
from momentum_shared.migrations import downgrade, upgrade
from momentum_tasks.models import TasksBase

ALEMBIC_INI = Path(__file__).resolve().parents[1] / "alembic.ini"
TASKS_TABLES = {"tasks", "task_tags", "idempotency_keys"}


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
