"""The analytics migrations: they build exactly the models' schema, and they are reversible."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from momentum_analytics.models import AnalyticsBase
from momentum_shared.migrations import downgrade, upgrade
from services.analytics.tests.support import ALEMBIC_INI

ANALYTICS_TABLES = {
    "processed_events",
    "analytics_users",
    "daily_activity",
    "daily_tasks",
    "floating_events",
    "streak_runs",
    "dead_letters",
}


def sync_url(url: str) -> str:
    return url.replace("+aiosqlite", "").replace("+asyncpg", "+psycopg")


def diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, AnalyticsBase.metadata))


async def test_models_match_the_migrations(database_url: str) -> None:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            changes = await connection.run_sync(diff)
    finally:
        await engine.dispose()
    assert changes == []


def test_the_migrations_downgrade_and_upgrade_again(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'analytics.db'}"
    upgrade(ALEMBIC_INI, url)
    engine = create_engine(sync_url(url))
    try:
        assert set(inspect(engine).get_table_names()) >= ANALYTICS_TABLES
        downgrade(ALEMBIC_INI, url)
        assert not ANALYTICS_TABLES & set(inspect(engine).get_table_names())
        upgrade(ALEMBIC_INI, url)
        assert set(inspect(engine).get_table_names()) >= ANALYTICS_TABLES
    finally:
        engine.dispose()
