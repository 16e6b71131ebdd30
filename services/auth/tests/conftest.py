"""Fixtures of the auth tests: a migrated database per dialect, the app, a client."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from momentum_auth.app import create_app
from momentum_auth.settings import AuthSettings
from momentum_devtools.testing.apps import running_app
from momentum_devtools.testing.databases import database_fixture
from momentum_devtools.testing.settings import make_settings as test_settings

ALEMBIC_INI = Path(__file__).resolve().parents[1] / "alembic.ini"

# Cheaper argon2id than production so the suite stays fast; the tests about the
# parameters themselves build their own settings.
FAST_HASHING: dict[str, Any] = {
    "password_memory_cost_kib": 1024,
    "password_time_cost": 1,
    "password_parallelism": 1,
}


database_url = database_fixture(ALEMBIC_INI)


def make_settings(database_url: str, **overrides: Any) -> AuthSettings:
    values: dict[str, Any] = {"issuer": "https://momentum.test", **FAST_HASHING, **overrides}
    return test_settings(AuthSettings, database_url, **values)


@pytest.fixture
def settings(database_url: str) -> AuthSettings:
    return make_settings(database_url)


@pytest.fixture
def app(settings: AuthSettings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(app) as client:
        yield client


@contextlib.asynccontextmanager
async def client_at(app: FastAPI, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an already running ``app`` whose requests come from ``address``."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
