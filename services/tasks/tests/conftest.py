"""Fixtures of the tasks tests: a migrated database per dialect, the app, users with tokens."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from momentum_devtools.testing.apps import running_app
from momentum_devtools.testing.databases import database_fixture
from momentum_devtools.testing.issuer import TestIssuer
from momentum_devtools.testing.settings import make_settings as test_settings
from momentum_shared.events import CloudEvent
from momentum_tasks.app import create_app
from momentum_tasks.models import OUTBOX
from momentum_tasks.settings import TasksSettings
from momentum_tasks.state import app_state
from services.tasks.tests.support import Events, Headers, NewTask

ALEMBIC_INI = Path(__file__).resolve().parents[1] / "alembic.ini"


database_url = database_fixture(ALEMBIC_INI)


def make_settings(database_url: str, **overrides: Any) -> TasksSettings:
    values: dict[str, Any] = {
        "revocation_enabled": False,
        "nats_url": "nats://127.0.0.1:1",
        "outbox_poll_interval_seconds": 0.05,
        **overrides,
    }
    return test_settings(TasksSettings, database_url, **values)


@pytest.fixture
def settings(database_url: str) -> TasksSettings:
    return make_settings(database_url)


@pytest.fixture
def app(settings: TasksSettings, issuer: TestIssuer) -> FastAPI:
    return create_app(settings, jwks_client=issuer.client())


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(app) as client:
        yield client


@pytest.fixture
def alice_id() -> uuid.UUID:
    return uuid.uuid4()


@pytest.fixture
def alice(issuer: TestIssuer, alice_id: uuid.UUID) -> Headers:
    """Headers of a valid token for Alice (all task scopes, Berlin time)."""
    return issuer.bearer(alice_id, tz="Europe/Berlin")


@pytest.fixture
def bob(issuer: TestIssuer) -> Headers:
    """Headers of a valid token for Bob, another user."""
    return issuer.bearer(uuid.uuid4(), tz="America/New_York")


@pytest.fixture
def new_task(client: httpx.AsyncClient) -> NewTask:
    """Create a task through the API: ``await new_task(headers, title=..., ...)``."""

    async def create(headers: dict[str, str], **body: Any) -> dict[str, Any]:
        body.setdefault("title", "Water the plants")
        response = await client.post("/tasks", json=body, headers=headers)
        assert response.status_code == 201, response.text
        task: dict[str, Any] = response.json()
        return task

    return create


@pytest.fixture
def outbox_events(app: FastAPI) -> Events:
    """Every event the service has written to its outbox, oldest first."""

    async def read() -> list[CloudEvent]:
        query = sa.select(OUTBOX.c.payload).order_by(OUTBOX.c.created_at, OUTBOX.c.id)
        async with app_state(app).engine.connect() as connection:
            payloads = (await connection.execute(query)).scalars().all()
        return [CloudEvent.from_json(payload) for payload in payloads]

    return read
