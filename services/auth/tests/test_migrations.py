"""The auth migrations are reversible and build exactly the tables the models use."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from momentum_auth.models import AuthBase
from momentum_devtools.testing.databases import schema_differences
from momentum_shared.migrations import downgrade, upgrade
from services.auth.tests.conftest import ALEMBIC_INI

AUTH_TABLES = {
    "users",
    "signing_keys",
    "refresh_token_families",
    "refresh_tokens",
    "throttle_entries",
    "usual_addresses",
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


async def test_models_match_the_migrations(database_url: str) -> None:
    assert await schema_differences(database_url, AuthBase.metadata) == []


CREATED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def execute(url: str, sql: str, **params: object) -> list[tuple[object, ...]]:
    async def run() -> list[tuple[object, ...]]:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as connection:
                result = await connection.execute(sa.text(sql), params)
                return [tuple(row) for row in result] if result.returns_rows else []
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_downgrade_and_upgrade_again(database_url: str) -> None:
    assert tables(database_url) == AUTH_TABLES
    downgrade(ALEMBIC_INI, database_url, "auth0004")
    # Before throttle entries, failed sign-ins had a table of their own.
    assert tables(database_url) == AUTH_TABLES - {
        "throttle_entries",
        "usual_addresses",
    } | {"login_failures"}
    downgrade(ALEMBIC_INI, database_url, "auth0002")
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


def insert_key(url: str, kid: str, *, activates_at: datetime, retired: bool = False) -> None:
    execute(
        url,
        "INSERT INTO signing_keys (kid, algorithm, public_jwk, private_key_encrypted, kek_id,"
        " created_at, activates_at, retired_at, expires_at)"
        " VALUES (:kid, 'RS256', '{}', :blob, 'x', :at, :at, :retired, :retired)",
        kid=kid,
        blob=b"sealed",
        at=activates_at,
        retired=activates_at if retired else None,
    )


def test_keys_of_the_activation_schema_get_their_roles(database_url: str) -> None:
    downgrade(ALEMBIC_INI, database_url, "auth0003")
    insert_key(database_url, "superseded", activates_at=CREATED)
    insert_key(database_url, "signing", activates_at=CREATED.replace(day=3))
    insert_key(database_url, "gone", activates_at=CREATED, retired=True)
    insert_key(database_url, "scheduled", activates_at=datetime(2099, 1, 1, tzinfo=UTC))
    upgrade(ALEMBIC_INI, database_url)
    rows = execute(
        database_url,
        "SELECT kid, role, activates_at, retired_at, expires_at FROM signing_keys ORDER BY kid",
    )
    keys = {str(row[0]): row[1:] for row in rows}
    assert {kid: row[0] for kid, row in keys.items()} == {
        "gone": None,
        "scheduled": "next",
        "signing": "active",
        "superseded": None,
    }
    assert keys["scheduled"][1] is None  # it has not signed yet
    # The superseded key is retired as of its successor's activation and still published.
    assert str(keys["superseded"][2]).startswith("2026-01-03")
    assert keys["superseded"][3] is not None
    # Two active keys cannot exist.
    with pytest.raises(sa.exc.IntegrityError):
        execute(database_url, "UPDATE signing_keys SET role = 'active' WHERE kid = 'gone'")
    downgrade(ALEMBIC_INI, database_url, "auth0003")
    # The next key never signed anything: the older schema does not get it.
    kids = {str(row[0]) for row in execute(database_url, "SELECT kid FROM signing_keys")}
    assert kids == {"gone", "signing", "superseded"}
