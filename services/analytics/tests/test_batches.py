"""A batch is applied set-based: the same projection as one event at a time, in few statements."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from momentum_analytics.decoding import Fact, decode
from momentum_analytics.repository import PROJECTION_TABLES, AnalyticsRepository
from momentum_analytics.service import apply_facts
from momentum_shared.db import UnitOfWork, create_engine, create_session_factory
from momentum_shared.events import CloudEvent
from services.analytics.tests.support import (
    at,
    completed,
    created,
    logged_in,
    registered,
    updated,
)

NOW = at("2026-11-26T12:00:00Z")
ZONES = ("UTC", "Europe/Berlin", "America/Los_Angeles", "Pacific/Kiritimati", "Not/AZone")


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_session_factory(engine)


def history(seed: int, users: int = 4, count: int = 160) -> list[CloudEvent]:
    """Registrations, timezone changes, logins, creations and (re-)completions; some events
    carry no usable usertz, so their day follows the user's timezone as it becomes known."""
    rng = random.Random(seed)
    people = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(users)]
    start = at("2026-10-01T00:00:00Z")
    events: list[CloudEvent] = [
        registered(user, start, rng.choice(ZONES), usertz=None) for user in people
    ]
    tasks: list[tuple[uuid.UUID, uuid.UUID]] = []
    for _ in range(count):
        user = rng.choice(people)
        when = start + timedelta(minutes=rng.randrange(60 * 24 * 40))
        usertz = rng.choice((*ZONES, None, None))
        pick = rng.random()
        if pick < 0.05:
            events.append(updated(user, when, rng.choice(ZONES), usertz=usertz))
        elif pick < 0.35:
            method = rng.choice(("password", "refresh"))
            events.append(logged_in(user, when, method, usertz=usertz))
        elif pick < 0.7 or not tasks:
            task = uuid.UUID(int=rng.getrandbits(128))
            tasks.append((user, task))
            events.append(created(user, when, task, usertz=usertz))
        else:
            owner, task = rng.choice(tasks)  # a task may be completed again, any day
            events.append(completed(owner, when, task, usertz=usertz))
    return events


def facts_of(events: Sequence[CloudEvent]) -> list[Fact]:
    return [fact for fact in (decode(event.to_json()) for event in events) if fact]


async def snapshot(sessions: async_sessionmaker[AsyncSession]) -> dict[str, list[Any]]:
    """Every projection row (the inbox's times aside), sorted; a day row left at zero by an
    event that moved away is no row (where it stays depends on how events were grouped)."""
    tables: dict[str, list[Any]] = {}
    async with UnitOfWork(sessions) as uow:
        connection = await uow.session.connection()
        for table in PROJECTION_TABLES:
            columns = [column for column in table.c if column.name != "processed_at"]
            statement = sa.select(*columns)
            if table.name == "daily_activity":
                statement = statement.where(
                    (table.c.login_events != 0)
                    | (table.c.tasks_created != 0)
                    | (table.c.tasks_completed != 0)
                )
            rows = (await connection.execute(statement)).all()
            tables[table.name] = sorted(tuple(str(value) for value in row) for row in rows)
    return tables


async def apply(sessions: async_sessionmaker[AsyncSession], facts: Sequence[Fact]) -> int:
    async with UnitOfWork(sessions) as uow:
        result = await apply_facts(AnalyticsRepository(uow.session), facts, now=NOW)
    return result.applied


async def clear(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with UnitOfWork(sessions) as uow:
        await AnalyticsRepository(uow.session).clear_projections()


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_batches_with_duplicates_in_any_order_give_the_projection_of_one_at_a_time(
    sessions: async_sessionmaker[AsyncSession], seed: int
) -> None:
    facts = facts_of(history(seed))
    for fact in facts:
        await apply(sessions, [fact])
    one_at_a_time = await snapshot(sessions)
    assert one_at_a_time["streak_runs"], "the history must make streaks"
    assert one_at_a_time["floating_events"], "the history must have floating events"

    await clear(sessions)
    rng = random.Random(seed)
    shuffled = [*facts, *rng.sample(facts, len(facts) // 4)]  # a quarter delivered twice
    rng.shuffle(shuffled)
    applied = 0
    while shuffled:
        size = rng.choice((1, 7, 50, 200))
        applied += await apply(sessions, shuffled[:size])
        del shuffled[:size]
    assert applied == len(facts)
    assert await snapshot(sessions) == one_at_a_time


async def test_a_batch_redelivered_after_a_crash_before_its_ack_changes_nothing(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    facts = facts_of(history(7))
    assert await apply(sessions, facts) == len(facts)
    before = await snapshot(sessions)
    assert await apply(sessions, facts) == 0  # the same messages, delivered again
    assert await apply(sessions, list(reversed(facts[: len(facts) // 2]))) == 0
    assert await snapshot(sessions) == before


async def test_a_batch_of_200_events_takes_a_handful_of_statements(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    events = live_traffic(200, seed=5)
    facts = facts_of(events)
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    sa.event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        assert await apply(sessions, facts) == 200
    finally:
        sa.event.remove(engine.sync_engine, "before_cursor_execute", count)
    # A fixed number whatever the batch's size: users, inbox, tasks, days, streak runs,
    # completions, priorities, classified counts, goals.
    assert len(statements) < 16, statements


def live_traffic(count: int, seed: int) -> list[CloudEvent]:
    """Logins, creations and completions as production sends them (every one with a usertz)."""
    rng = random.Random(seed)
    users = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(50)]
    start = at("2026-11-01T09:00:00Z")
    events: list[CloudEvent] = []
    for index in range(count):
        user = rng.choice(users)
        when = start + timedelta(hours=3 * index)
        if index % 4 == 0:
            events.append(logged_in(user, when, usertz="Europe/Berlin"))
        elif index % 4 == 3:
            events.append(completed(user, when, uuid.uuid4(), usertz="Europe/Berlin"))
        else:
            events.append(created(user, when, uuid.uuid4(), usertz="Europe/Berlin"))
    return events


async def test_batches_of_any_size_send_the_same_statements_on_postgresql(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Each statement is prepared once per connection: batches of 3 to 300 events send the
    same texts (the rows travel as arrays), not one text per number of rows."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no arrays: its batches are many-row statements")
    facts = facts_of(live_traffic(700, seed=11))
    texts: list[set[str]] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        texts[-1].add(statement)

    sa.event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        for size in (3, 300, 30, 301, 66):
            texts.append(set())
            assert await apply(sessions, facts[:size]) == size
            del facts[:size]
    finally:
        sa.event.remove(engine.sync_engine, "before_cursor_execute", record)
    by_start: dict[str, set[str]] = {}
    for text in set().union(*texts):
        by_start.setdefault(text[:60], set()).add(text)
    assert len(by_start) > 8, by_start
    varying = {start: len(found) for start, found in by_start.items() if len(found) > 1}
    assert not varying, f"texts that vary with the batch size: {varying}"
