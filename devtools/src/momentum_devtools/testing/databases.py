"""Migrated test databases for a service: SQLite files and PostgreSQL databases.

A session migrates one template per service and dialect (with the real migrations);
each test gets a fresh copy: a copied SQLite file, or ``CREATE DATABASE … TEMPLATE``.
Making and dropping a PostgreSQL copy takes a few hundred milliseconds (``DROP DATABASE``
waits for a checkpoint), most of a short test's time, so neither is on a test's way: while
a test runs, a background thread already makes the copy the next test of the same service
will get, and when a test ends its copy is closed and renamed at once (so its name is gone)
and another thread drops it. Each copy is still used by one test alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from momentum_devtools.testing.resources import (
    POSTGRES_HINT,
    asyncpg_url,
    create_database,
    created_database,
    drop_database,
    in_ci,
    with_database,
)
from momentum_shared.migrations import upgrade


class DatabaseTemplates:
    """Session-wide cache of migrated templates, keyed by (alembic.ini, dialect)."""

    def __init__(self, workdir: Path, postgres_admin_url: str | None, run_id: str) -> None:
        self.workdir = workdir
        self.postgres_admin_url = postgres_admin_url
        self.run_id = run_id
        self._sqlite: dict[Path, Path] = {}
        self._postgres: dict[Path, str] = {}
        self._stack = contextlib.ExitStack()
        # One copy made ahead per PostgreSQL template, by one thread; used copies are
        # dropped by another (a DROP DATABASE waits for a checkpoint).
        self._spares: dict[str, Future[str]] = {}
        self._copier = ThreadPoolExecutor(max_workers=1, thread_name_prefix="database-copier")
        self._dropper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="database-dropper")

    def close(self) -> None:
        try:
            for spare in self._spares.values():
                with contextlib.suppress(Exception):
                    self._dropper.submit(self._drop, spare.result())
            self._spares.clear()
            self._copier.shutdown(wait=True)
            self._dropper.shutdown(wait=True)
        finally:
            self._stack.close()

    def _copy(self, template: str) -> str:
        """A new database copied from ``template``: its name."""
        assert self.postgres_admin_url is not None
        name = f"momentum_test_{uuid.uuid4().hex[:16]}"
        create_database(self.postgres_admin_url, name, template=template)
        return name

    def _drop(self, name: str) -> None:
        assert self.postgres_admin_url is not None
        drop_database(self.postgres_admin_url, name)

    def _take_copy(self, template: str) -> str:
        """The copy made ahead for ``template`` (or a new one), and the next copy started."""
        spare = self._spares.pop(template, None)
        name: str | None = None
        if spare is not None:
            with contextlib.suppress(Exception):
                name = spare.result()
        if name is None:
            name = self._copy(template)
        self._spares[template] = self._copier.submit(self._copy, template)
        return name

    def _discard(self, name: str) -> None:
        """``name`` is gone at once (closed and renamed) and dropped in the background."""
        assert self.postgres_admin_url is not None
        retired = f"momentum_dropped_{uuid.uuid4().hex[:16]}"
        try:
            asyncio.run(_retire(self.postgres_admin_url, name, retired))
        except (OSError, asyncpg.PostgresError, TimeoutError):
            self._drop(name)
            return
        self._dropper.submit(self._drop, retired)

    def sqlite_template(self, ini: Path) -> Path:
        if ini not in self._sqlite:
            path = self.workdir / f"template-{len(self._sqlite)}-{ini.parent.name}.db"
            upgrade(ini, f"sqlite+aiosqlite:///{path}")
            self._sqlite[ini] = path
        return self._sqlite[ini]

    def postgres_template(self, ini: Path) -> str:
        if self.postgres_admin_url is None:
            raise RuntimeError(POSTGRES_HINT)
        if ini not in self._postgres:
            name = f"momentum_tpl_{ini.parent.name}_{self.run_id}"
            url = self._stack.enter_context(created_database(self.postgres_admin_url, name))
            upgrade(ini, asyncpg_url(url))
            self._postgres[ini] = name
        return self._postgres[ini]

    @contextlib.contextmanager
    def database(self, ini: Path, dialect: str, tmp_path: Path) -> Iterator[str]:
        """A fresh, migrated database of ``dialect`` for one test; its SQLAlchemy URL."""
        if dialect == "sqlite":
            tmp_path.mkdir(parents=True, exist_ok=True)
            target = tmp_path / f"{ini.parent.name}-{uuid.uuid4().hex[:8]}.db"
            shutil.copyfile(self.sqlite_template(ini), target)
            yield f"sqlite+aiosqlite:///{target}"
            return
        if dialect != "postgresql":
            raise ValueError(f"unknown dialect {dialect!r}")
        require_postgres(self.postgres_admin_url)
        assert self.postgres_admin_url is not None
        name = self._take_copy(self.postgres_template(ini))
        try:
            yield asyncpg_url(with_database(self.postgres_admin_url, name))
        finally:
            self._discard(name)


def database_fixture(alembic_ini: Path) -> Any:
    """A ``database_url`` fixture for a service: a fresh migrated database per test,
    parametrised over SQLite and PostgreSQL (``database_url = database_fixture(INI)``)."""

    @pytest.fixture(params=["sqlite", "postgresql"])
    def database_url(
        request: pytest.FixtureRequest, database_templates: DatabaseTemplates, tmp_path: Path
    ) -> Iterator[str]:
        with database_templates.database(alembic_ini, request.param, tmp_path) as url:
            yield url

    return database_url


async def _retire(admin_url: str, name: str, retired: str) -> None:
    """Close every connection to database ``name`` and rename it to ``retired``."""
    conn = await asyncpg.connect(admin_url, timeout=10)
    try:
        await conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        for _ in range(250):
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = $1 AND pid <> pg_backend_pid()",
                name,
            )
            try:
                await conn.execute(f'ALTER DATABASE "{name}" RENAME TO "{retired}"')
            except asyncpg.ObjectInUseError:
                await asyncio.sleep(0.02)
            else:
                return
        raise TimeoutError(f"database {name} is still in use")
    finally:
        await conn.close()


def require_postgres(admin_url: str | None) -> None:
    """Skip (fail under CI=true) when no PostgreSQL was found."""
    if admin_url is not None:
        return
    if in_ci():
        pytest.fail(f"CI=true and {POSTGRES_HINT}", pytrace=False)
    pytest.skip(POSTGRES_HINT)


async def schema_differences(url: str, metadata: sa.MetaData) -> list[object]:
    """What alembic's autogenerate finds between the migrated database at ``url`` and
    ``metadata`` (types included): empty when the migrations build what the models say."""

    def compare(connection: sa.Connection) -> list[object]:
        dialect = connection.dialect.name
        # Alembic cannot reflect SQLite's virtual tables (FTS5) and their shadow tables:
        # they are left out here, and the service's own tests compare their definitions.
        virtual = (
            {
                row[1]
                for row in connection.exec_driver_sql("PRAGMA table_list")
                if row[2] in ("virtual", "shadow")
            }
            if dialect == "sqlite"
            else set()
        )

        def include_name(name: str | None, type_: str, _parents: object) -> bool:
            return not (type_ == "table" and name in virtual)

        def include_object(
            item: object, _name: str | None, type_: str, reflected: bool, _other: object
        ) -> bool:
            # A column or index of the models made on one dialect only (``info["only_on"]``).
            info = getattr(item, "info", {})
            return (
                reflected
                or type_ not in ("column", "index")
                or (info.get("only_on", dialect) == dialect)
            )

        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "include_name": include_name,
                "include_object": include_object,
            },
        )
        return list(compare_metadata(context, metadata))

    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(compare)
    finally:
        await engine.dispose()
