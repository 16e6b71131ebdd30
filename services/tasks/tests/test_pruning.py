"""Tasks prunes published outbox rows past their retention; unpublished rows always stay."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from momentum_shared.db import create_session_factory
from momentum_shared.events import utcnow
from momentum_tasks.app import pruner
from momentum_tasks.cli import main
from momentum_tasks.models import OUTBOX
from services.tasks.tests.conftest import make_settings

DAY = timedelta(days=1)


async def fill_outbox(database_url: str) -> None:
    now = utcnow()
    rows = [
        # id, created, published
        ("old-published", now - 10 * DAY, now - 9 * DAY),
        ("recent-published", now - 2 * DAY, now - 2 * DAY),
        ("old-unpublished", now - 30 * DAY, None),
    ]
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                sa.insert(OUTBOX),
                [
                    {
                        "id": event_id,
                        "subject": "tasks.task.created",
                        "payload": b"{}",
                        "created_at": created,
                        "available_at": created,
                        "published_at": published,
                        "attempts": 0,
                    }
                    for event_id, created, published in rows
                ],
            )
    finally:
        await engine.dispose()


async def outbox_ids(database_url: str) -> set[str]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            return set((await connection.execute(sa.select(OUTBOX.c.id))).scalars())
    finally:
        await engine.dispose()


async def test_published_outbox_rows_past_the_retention_are_pruned_and_the_rest_kept(
    database_url: str,
) -> None:
    await fill_outbox(database_url)
    settings = make_settings(database_url, outbox_retention_seconds=7 * DAY.total_seconds())
    engine = create_async_engine(database_url)
    try:
        result = await pruner(create_session_factory(engine), settings).prune()
    finally:
        await engine.dispose()
    assert result.deleted == {"outbox": 1}
    assert await outbox_ids(database_url) == {"recent-published", "old-unpublished"}


def test_the_prune_command_prunes_once_and_says_what_went(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(fill_outbox(database_url))
    monkeypatch.setenv("MOMENTUM_TASKS_DATABASE_URL", database_url)
    monkeypatch.setenv("MOMENTUM_TASKS_ENVIRONMENT", "test")
    monkeypatch.setenv("MOMENTUM_TASKS_OUTBOX_RETENTION_SECONDS", str(5 * DAY.total_seconds()))
    main(["prune"])
    document = json.loads(capsys.readouterr().out)
    assert document == {"deleted": {"outbox": 1}, "skipped": False, "complete": True}
    assert asyncio.run(outbox_ids(database_url)) == {"recent-published", "old-unpublished"}
