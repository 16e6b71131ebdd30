"""The auth migrations are reversible and build exactly the tables the models use."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from momentum_shared.migrations import downgrade, upgrade
from services.auth.tests.conftest import ALEMBIC_INI

AUTH_TABLES = {
    "users",
    "signing_keys",
    "refresh_token_families",
    "refresh_tokens",
    "login_failures",
    "outbox",
}


def tables(url: str) -> set[str]:
    async def read() -> set[str]:
        engine = create_async_engine(url)
        async with engine.connect() as connection:
            names = await connection.run_sync(lambda sync: sa.inspect(sync).get_table_names())
        await engine.dispose()
        return set(names) - {"alembic_version"}

    return asyncio.run(read())


def test_downgrade_and_upgrade_again(database_url: str) -> None:
    assert tables(database_url) == AUTH_TABLES
    downgrade(ALEMBIC_INI, database_url, "auth0001")
    assert tables(database_url) == {"outbox"}
    downgrade(ALEMBIC_INI, database_url, "base")
    assert tables(database_url) == set()
    upgrade(ALEMBIC_INI, database_url)
    assert tables(database_url) == AUTH_TABLES
