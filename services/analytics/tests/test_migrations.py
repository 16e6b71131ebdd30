"""The analytics migrations: they build exactly the models' schema, and they are reversible."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, inspect

from momentum_analytics.models import AnalyticsBase
from momentum_devtools.testing.databases import schema_differences
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
    "task_completions",
    "task_priorities",
    "goals",
}


def sync_url(url: str) -> str:
    return url.replace("+aiosqlite", "").replace("+asyncpg", "+psycopg")


async def test_models_match_the_migrations(database_url: str) -> None:
    assert await schema_differences(database_url, AnalyticsBase.metadata) == []


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
