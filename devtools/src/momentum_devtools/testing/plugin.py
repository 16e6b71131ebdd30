"""The pytest plugin every member's tests use (``-p momentum_devtools.testing.plugin``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats as nats_client
import pytest
from nats.js.errors import NotFoundError
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from momentum_devtools.natsserver import ROLES, EmbeddedNats
from momentum_devtools.testing.databases import DatabaseTemplates, require_postgres
from momentum_devtools.testing.issuer import TestIssuer
from momentum_devtools.testing.natsusers import NATS_PASSWORDS
from momentum_devtools.testing.resources import (
    NatsServer,
    PostgresServer,
    asyncpg_url,
    created_database,
    resolve_nats_container,
    resolve_postgres,
)
from momentum_devtools.testing.tracing import captured_spans
from momentum_shared.events import STREAM_SUBJECTS

DIALECTS = ("sqlite", "postgresql")


def pytest_configure() -> None:
    """Every service (in process or as a child process) connects as its own NATS user.

    So each test runs the services under the permissions they have in production; test code
    that publishes or inspects streams uses the admin credentials in ``nats_url``.
    """
    for role in ROLES:
        os.environ[f"MOMENTUM_{role.upper()}_NATS_USER"] = role
        os.environ[f"MOMENTUM_{role.upper()}_NATS_PASSWORD"] = NATS_PASSWORDS[role]


@pytest.fixture(scope="session")
def run_id() -> str:
    """Unique per test session: part of every database name this run creates."""
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = resolve_postgres()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_admin_url(postgres_server: PostgresServer) -> str | None:
    """A URL (plain ``postgresql://``) for a role that may create databases, or None."""
    return postgres_server.url


@pytest.fixture(scope="session")
def database_templates(
    tmp_path_factory: pytest.TempPathFactory, postgres_admin_url: str | None, run_id: str
) -> Iterator[DatabaseTemplates]:
    templates = DatabaseTemplates(
        tmp_path_factory.mktemp("db-templates"), postgres_admin_url, run_id
    )
    try:
        yield templates
    finally:
        templates.close()


@pytest.fixture(params=DIALECTS)
def blank_database_url(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_admin_url: str | None, run_id: str
) -> Iterator[str]:
    """An empty database (no migrations) per test, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'blank.db'}"
        return
    require_postgres(postgres_admin_url)
    assert postgres_admin_url is not None
    name = f"momentum_test_blank_{run_id}_{uuid.uuid4().hex[:8]}"
    with created_database(postgres_admin_url, name) as url:
        yield asyncpg_url(url)


@pytest.fixture(scope="session")
def nats_session_server() -> Iterator[NatsServer]:
    server = resolve_nats_container()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def nats_url(nats_session_server: NatsServer, tmp_path: Path) -> Iterator[str]:
    """A NATS URL with JetStream whose streams belong to this test alone.

    With no server named and no Docker, each test gets its own embedded ``nats-server``
    (about 50 ms), so fixed stream names (docs/spec/events.md §1) never clash between tests or runs.
    Its users and permissions are production's; the URL carries the admin's credentials
    (for test code), which a service's own credentials replace. A named or containerised
    server is private to the session; its Momentum streams are deleted before each test.
    """
    if nats_session_server.url is None:
        with EmbeddedNats(tmp_path / "nats", passwords=NATS_PASSWORDS) as server:
            yield server.admin_url
        return
    url = nats_session_server.url

    async def purge() -> None:
        nc = await nats_client.connect(url)
        js = nc.jetstream()
        for name in STREAM_SUBJECTS:
            with contextlib.suppress(NotFoundError):
                await js.delete_stream(name)
        await nc.close()

    asyncio.run(purge())
    yield nats_session_server.url


@pytest.fixture
def nats_server_factory() -> Iterator[type[EmbeddedNats]]:
    """Starts private ``nats-server`` processes that a fault test may stop and restart.

    They have the session's users; ``url`` carries the admin's credentials, like ``nats_url``.
    """
    started: list[EmbeddedNats] = []

    class Factory(EmbeddedNats):
        def __init__(self, store_dir: Path, *, port: int | None = None, **kwargs: Any) -> None:
            kwargs.setdefault("passwords", NATS_PASSWORDS)
            super().__init__(store_dir, port=port, **kwargs)

        @property
        def url(self) -> str:
            # As ``nats_url``: the admin's credentials, which a service's own replace.
            return self.admin_url

        def start(self, *, timeout: float = 10.0) -> EmbeddedNats:
            started.append(self)
            return super().start(timeout=timeout)

    yield Factory
    for server in started:
        server.stop()


@pytest.fixture
def traces() -> Iterator[InMemorySpanExporter]:
    """The spans this test finishes (tracing is switched on for the rest of the session)."""
    with captured_spans() as exporter:
        yield exporter


@pytest.fixture(scope="session")
def issuer() -> TestIssuer:
    """One RSA key per session (key generation is slow); tokens are minted per test."""
    return TestIssuer()


# -- the unit layer -----------------------------------------------------------------------

UNIT_DIRECTORY = ("tests", "unit")
"""``<member>/tests/unit/``: pure logic only, run by ``make test-unit`` in seconds."""

IO_FIXTURES = frozenset(
    {
        "postgres_server",
        "postgres_admin_url",
        "database_templates",
        "blank_database_url",
        "database_url",
        "nats_session_server",
        "nats_url",
        "nats_server_factory",
        "app",
        "app_factory",
        "client",
        "live_gateway",
    }
)
"""Fixtures that start or reach a database, NATS or an app: none is allowed in a unit test."""

IO_MARKERS = frozenset({"postgres", "nats", "integration"})


def in_unit_layer(path: Path) -> bool:
    parts = path.parts
    return any(parts[i : i + 2] == UNIT_DIRECTORY for i in range(len(parts) - 1))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail a unit test that asks for a database, NATS or an app (before any of them starts)."""
    if not in_unit_layer(item.path):
        return
    fixtures = IO_FIXTURES.intersection(getattr(item, "fixturenames", ()))
    markers = {mark.name for mark in item.iter_markers()} & IO_MARKERS
    if fixtures or markers:
        what = ", ".join(sorted(fixtures) + [f"@pytest.mark.{name}" for name in sorted(markers)])
        pytest.fail(
            f"{item.nodeid} is in a unit directory (tests/unit/), which runs without a "
            f"database, NATS or an app, but uses {what}: move it out of tests/unit/",
            pytrace=False,
        )
