"""Fixtures of the analytics tests: a migrated database per dialect, NATS, the running app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from momentum_analytics.app import create_app
from momentum_analytics.settings import AnalyticsSettings
from momentum_devtools.testing.apps import running_app
from momentum_devtools.testing.databases import database_fixture
from momentum_devtools.testing.issuer import TestIssuer
from services.analytics.tests.support import ALEMBIC_INI, FixedClock, publish, wait_drained

# Short timeouts so retries and redeliveries happen within a test's patience.
FAST_CONSUMER: dict[str, Any] = {
    "consumer_fetch_timeout_seconds": 0.2,
    "consumer_nak_delay_seconds": 0.05,
    "consumer_retry_interval_seconds": 0.1,
    "consumer_lag_interval_seconds": 0.1,
    "dead_letter_after_deliveries": 3,
    "revocation_enabled": False,
    "log_json": False,
    "log_level": "WARNING",
}


database_url = database_fixture(ALEMBIC_INI)


@pytest.fixture
def settings_factory(
    database_url: str, nats_url: str, issuer: TestIssuer
) -> Callable[..., AnalyticsSettings]:
    def make(**overrides: Any) -> AnalyticsSettings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "nats_url": nats_url,
            "token_issuer": issuer.issuer,
            "token_audience": issuer.audience,
            **FAST_CONSUMER,
            **overrides,
        }
        return AnalyticsSettings(**values)

    return make


@pytest.fixture
def settings(settings_factory: Callable[..., AnalyticsSettings]) -> AnalyticsSettings:
    return settings_factory()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def app(settings: AnalyticsSettings, issuer: TestIssuer, clock: FixedClock) -> FastAPI:
    return create_app(settings, jwks_client=issuer.client(), clock=clock)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(app) as client:
        yield client


Feed = Callable[..., Any]


@pytest.fixture
def feed(client: httpx.AsyncClient, nats_url: str) -> Feed:
    """Publish events to JetStream and wait until the running app's consumer applied them."""

    async def run(events: Any, **kwargs: Any) -> None:
        await publish(nats_url, events, **kwargs)
        await wait_drained(nats_url)

    return run
