"""Analytics forgets inbox ids processed longer ago than the inbox retention."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from momentum_analytics.app import pruner
from momentum_analytics.cli import main
from momentum_analytics.models import AnalyticsBase, ProcessedEvent
from momentum_analytics.settings import AnalyticsSettings
from momentum_shared.db import create_session_factory
from momentum_shared.events import utcnow

INBOX = AnalyticsBase.metadata.tables[ProcessedEvent.__tablename__]
DAY = timedelta(days=1)
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


async def fill_inbox(database_url: str, now: datetime) -> None:
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                sa.insert(INBOX),
                [
                    {"event_id": "old", "event_type": "t", "processed_at": now - 8 * DAY},
                    {"event_id": "older", "event_type": "t", "processed_at": now - 90 * DAY},
                    {"event_id": "recent", "event_type": "t", "processed_at": now - 6 * DAY},
                    {"event_id": "new", "event_type": "t", "processed_at": now},
                ],
            )
    finally:
        await engine.dispose()


async def inbox_ids(database_url: str) -> set[str]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            return set((await connection.execute(sa.select(INBOX.c.event_id))).scalars())
    finally:
        await engine.dispose()


async def test_inbox_ids_older_than_the_retention_are_forgotten_and_newer_ones_kept(
    database_url: str,
) -> None:
    await fill_inbox(database_url, NOW)
    settings = AnalyticsSettings(database_url=database_url, inbox_retention_seconds=7 * 86400)
    engine = create_async_engine(database_url)
    try:
        job = pruner(create_session_factory(engine), settings, clock=lambda: NOW)
        result = await job.prune()
    finally:
        await engine.dispose()
    assert result.deleted == {"processed_events": 2}
    assert await inbox_ids(database_url) == {"recent", "new"}


def test_the_prune_command_forgets_old_inbox_ids_once(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(fill_inbox(database_url, utcnow()))
    monkeypatch.setenv("MOMENTUM_ANALYTICS_DATABASE_URL", database_url)
    monkeypatch.setenv("MOMENTUM_ANALYTICS_INBOX_RETENTION_SECONDS", str(30 * 86400))
    assert main(["prune"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document == {"deleted": {"processed_events": 1}, "skipped": False, "complete": True}
    assert asyncio.run(inbox_ids(database_url)) == {"old", "recent", "new"}
