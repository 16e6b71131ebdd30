"""PostgreSQL goes away under a running service: requests answer 503; it returns: they
succeed again without a restart."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from momentum_devtools.testing.apps import running_app
from momentum_devtools.testing.databases import DatabaseTemplates
from momentum_devtools.testing.issuer import TestIssuer
from momentum_tasks.app import create_app
from services.tasks.tests.conftest import make_settings
from services.tasks.tests.support import Headers

ALEMBIC_INI = Path(__file__).resolve().parents[1] / "alembic.ini"


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; ``cut()`` drops every connection and refuses
    new ones until ``restore()``."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.writers |= {writer, up_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def cut(self) -> None:
        if self.server is None:
            return
        self.server.close()
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()
        await self.server.wait_closed()
        self.server = None

    async def restore(self) -> None:
        await self.start()


@pytest.fixture
def postgres_url(database_templates: DatabaseTemplates, tmp_path: Path) -> Iterator[str]:
    """A network outage needs a database behind a socket: PostgreSQL only."""
    with database_templates.database(ALEMBIC_INI, "postgresql", tmp_path) as url:
        yield url


@pytest.fixture
async def proxy(postgres_url: str) -> AsyncIterator[TcpProxy]:
    url = make_url(postgres_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    yield proxy
    await proxy.cut()


async def test_requests_answer_503_while_postgres_is_unreachable_then_recover(
    postgres_url: str, proxy: TcpProxy, issuer: TestIssuer, alice: Headers
) -> None:
    url = make_url(postgres_url).set(host="127.0.0.1", port=proxy.port)
    settings = make_settings(url.render_as_string(hide_password=False), outbox_relay_enabled=False)
    app: FastAPI = create_app(settings, jwks_client=issuer.client())
    async with running_app(app) as client:
        created = await client.post("/tasks", json={"title": "Survives"}, headers=alice)
        assert created.status_code == 201, created.text
        path = f"/tasks/{created.json()['id']}"
        assert (await client.get(path, headers=alice)).status_code == 200

        await proxy.cut()
        for _ in range(2):
            response = await client.get(path, headers=alice)
            assert response.status_code == 503, response.text

        await proxy.restore()
        statuses = [(await client.get(path, headers=alice)).status_code for _ in range(3)]
        assert statuses[-1] == 200, statuses
        assert statuses.count(503) <= 1, statuses
        response = await client.get(path, headers=alice)
        assert isinstance(response, httpx.Response)
        assert response.json()["title"] == "Survives"
