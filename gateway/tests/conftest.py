"""Fixtures of the gateway tests: real upstreams under uvicorn and the gateway app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gateway.tests.support import UvicornThread, upstream_app
from momentum_devtools.testing.apps import running_app
from momentum_devtools.testing.issuer import TestIssuer
from momentum_gateway.app import create_app
from momentum_gateway.settings import GatewaySettings

SERVICES = ("auth", "tasks", "analytics")


@pytest.fixture(scope="session")
def upstreams() -> Iterator[dict[str, str]]:
    """One real uvicorn server per service, shared by the session (they keep no state)."""
    servers = {name: UvicornThread(upstream_app(name)).start() for name in SERVICES}
    try:
        yield {name: server.url for name, server in servers.items()}
    finally:
        for server in servers.values():
            server.stop()


@pytest.fixture
def settings_factory(
    upstreams: dict[str, str], issuer: TestIssuer
) -> Callable[..., GatewaySettings]:
    def make(**overrides: Any) -> GatewaySettings:
        values: dict[str, Any] = {
            "auth_url": upstreams["auth"],
            "tasks_url": upstreams["tasks"],
            "analytics_url": upstreams["analytics"],
            "jwks_url": "http://auth.test/.well-known/jwks.json",
            "token_issuer": issuer.issuer,
            "token_audience": issuer.audience,
            "revocation_enabled": False,
            "upstream_timeout_seconds": 1.0,
            "metrics_port": 0,  # any free port: tests run side by side
            "log_json": False,
            "log_level": "WARNING",
            **overrides,
        }
        return GatewaySettings(**values)

    return make


@pytest.fixture
def app_factory(
    settings_factory: Callable[..., GatewaySettings], issuer: TestIssuer
) -> Callable[..., FastAPI]:
    def make(**overrides: Any) -> FastAPI:
        return create_app(settings_factory(**overrides), jwks_client=issuer.client())

    return make


@pytest.fixture
async def client(app_factory: Callable[..., FastAPI]) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(app_factory()) as c:
        yield c


@pytest.fixture
async def live_gateway(
    app_factory: Callable[..., FastAPI],
) -> AsyncIterator[Callable[..., UvicornThread]]:
    """The gateway itself under uvicorn, for what only a real socket shows (chunked bodies)."""
    started: list[UvicornThread] = []

    def start(
        *, proxy_headers: bool = False, forwarded_allow_ips: str | None = None, **overrides: Any
    ) -> UvicornThread:
        app = app_factory(**overrides)
        server = UvicornThread(
            app, proxy_headers=proxy_headers, forwarded_allow_ips=forwarded_allow_ips
        ).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
