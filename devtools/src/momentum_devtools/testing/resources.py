"""Where tests find PostgreSQL and NATS: environment, then Docker (testcontainers), then local.

Order, for both: ``MOMENTUM_TEST_POSTGRES_URL`` / ``MOMENTUM_TEST_NATS_URL``; a reachable
Docker engine through testcontainers; otherwise the embedded ``nats-server`` and a
PostgreSQL on 127.0.0.1:5432 if one answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

logger = logging.getLogger("momentum.testing")

LOCAL_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
POSTGRES_HINT = (
    "no PostgreSQL found: set MOMENTUM_TEST_POSTGRES_URL=postgresql://user:password@host:port/db"
    " (a role allowed to CREATE DATABASE), start a Docker engine,"
    " or run PostgreSQL on 127.0.0.1:5432"
)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def plain_postgres_url(url: str) -> str:
    """``postgresql+driver://…`` → ``postgresql://…`` (what asyncpg itself accepts)."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.split('+', 1)[0]}{sep}{rest}"


def asyncpg_url(url: str) -> str:
    """A SQLAlchemy URL for the same server with the asyncpg driver."""
    return "postgresql+asyncpg://" + plain_postgres_url(url).partition("://")[2]


def with_database(url: str, database: str) -> str:
    base, _, query = url.partition("?")
    prefix = base.rsplit("/", 1)[0]
    return f"{prefix}/{database}" + (f"?{query}" if query else "")


async def _postgres_answers(url: str) -> bool:
    try:
        conn = await asyncpg.connect(plain_postgres_url(url), timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await conn.close()
    return True


def postgres_answers(url: str) -> bool:
    return asyncio.run(_postgres_answers(url))


def docker_available() -> bool:
    """True when a Docker engine answers a ping (quickly false when there is no socket)."""
    host = os.environ.get("DOCKER_HOST", "")
    if not host and not Path("/var/run/docker.sock").exists():
        return False
    try:
        import docker

        client = docker.from_env(timeout=3)
        client.ping()
        client.close()
    except Exception:
        return False
    return True


@dataclass
class PostgresServer:
    url: str | None
    origin: str
    container: Any = None

    def stop(self) -> None:
        if self.container is not None:
            self.container.stop()


def resolve_postgres() -> PostgresServer:
    explicit = os.environ.get("MOMENTUM_TEST_POSTGRES_URL")
    if explicit:
        return PostgresServer(plain_postgres_url(explicit), "MOMENTUM_TEST_POSTGRES_URL")
    if docker_available():
        from testcontainers.postgres import PostgresContainer

        container = PostgresContainer("postgres:17-alpine", driver=None)
        container.start()
        return PostgresServer(container.get_connection_url(), "testcontainers", container)
    if postgres_answers(LOCAL_POSTGRES_URL):
        return PostgresServer(LOCAL_POSTGRES_URL, "local 127.0.0.1:5432")
    return PostgresServer(None, "none")


@dataclass
class NatsServer:
    """A NATS server private to this test session (so fixed stream names never collide)."""

    url: str | None
    origin: str
    container: Any = None

    def stop(self) -> None:
        if self.container is not None:
            self.container.stop()


def resolve_nats_container() -> NatsServer:
    explicit = os.environ.get("MOMENTUM_TEST_NATS_URL")
    if explicit:
        return NatsServer(explicit, "MOMENTUM_TEST_NATS_URL")
    if docker_available():
        from testcontainers.core.container import DockerContainer
        from testcontainers.core.wait_strategies import LogMessageWaitStrategy

        container = (
            DockerContainer("nats:2.11-alpine")
            .with_command("-js")
            .with_exposed_ports(4222)
            .waiting_for(LogMessageWaitStrategy("Server is ready"))
        )
        container.start()
        host = container.get_container_host_ip()
        port = container.get_exposed_port(4222)
        return NatsServer(f"nats://{host}:{port}", "testcontainers", container)
    return NatsServer(None, "embedded")


async def _execute(admin_url: str, sql: str) -> None:
    conn = await asyncpg.connect(admin_url, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create_database(admin_url: str, name: str, *, template: str | None = None) -> str:
    """Create database ``name`` (optionally a copy of ``template``); its URL."""
    suffix = f' TEMPLATE "{template}" STRATEGY WAL_LOG' if template else ""
    asyncio.run(_execute(admin_url, f'CREATE DATABASE "{name}"{suffix}'))
    return with_database(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    """Drop database ``name`` if it exists, closing whatever is still connected to it."""
    asyncio.run(_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.contextmanager
def created_database(admin_url: str, name: str, *, template: str | None = None) -> Iterator[str]:
    """Create database ``name`` (optionally from a template), yield its URL, drop it afterwards."""
    url = create_database(admin_url, name, template=template)
    try:
        yield url
    finally:
        drop_database(admin_url, name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
