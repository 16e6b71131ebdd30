"""The auth migrations are reversible and build exactly the tables the models use."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

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


CREATED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def execute(url: str, sql: str, **params: object) -> list[tuple[object, ...]]:
    async def run() -> list[tuple[object, ...]]:
        engine = create_async_engine(url)
        async with engine.begin() as connection:
            result = await connection.execute(sa.text(sql), params)
            rows = [tuple(row) for row in result] if result.returns_rows else []
        await engine.dispose()
        return rows

    return asyncio.run(run())


def test_downgrade_and_upgrade_again(database_url: str) -> None:
    assert tables(database_url) == AUTH_TABLES
    downgrade(ALEMBIC_INI, database_url, "auth0002")
    assert tables(database_url) == AUTH_TABLES
    execute(
        database_url,
        "INSERT INTO signing_keys (kid, algorithm, public_jwk, private_key_encrypted, kek_id,"
        " created_at) VALUES ('k1', 'RS256', '{}', :blob, 'x', :created)",
        blob=b"sealed",
        created=CREATED,
    )
    upgrade(ALEMBIC_INI, database_url)
    # A key that existed before activation times became active when it was created.
    [(activates_at,)] = execute(database_url, "SELECT activates_at FROM signing_keys")
    assert str(activates_at).startswith("2026-01-02")
    execute(database_url, "DELETE FROM signing_keys")
    downgrade(ALEMBIC_INI, database_url, "auth0001")
    assert tables(database_url) == {"outbox"}
    downgrade(ALEMBIC_INI, database_url, "base")
    assert tables(database_url) == set()
    upgrade(ALEMBIC_INI, database_url)
    assert tables(database_url) == AUTH_TABLES
