"""Streak runs and the inbox against the real database, without NATS."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from momentum_analytics.decoding import decode
from momentum_analytics.models import LOGIN
from momentum_analytics.repository import AnalyticsRepository, Run
from momentum_analytics.service import (
    add_streak_day,
    apply_facts,
    remove_streak_day,
    runs_of,
    streak_as_of,
)
from momentum_shared.db import UnitOfWork, create_engine, create_session_factory
from services.analytics.tests.reference import Reference
from services.analytics.tests.support import as_reference, at, completed, logged_in

EPOCH = date(2026, 1, 1)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_session_factory(engine)


async def stored_runs(
    sessions: async_sessionmaker[AsyncSession], user: uuid.UUID, kind: str
) -> list[Run]:
    async with UnitOfWork(sessions) as uow:
        return await AnalyticsRepository(uow.session).runs_from(user, kind, date.min)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(steps=st.lists(st.tuples(st.booleans(), st.integers(0, 40)), max_size=40))
async def test_streak_runs_follow_days_added_and_removed_in_any_order(
    sessions: async_sessionmaker[AsyncSession], steps: list[tuple[bool, int]]
) -> None:
    user = uuid.uuid4()
    days: set[date] = set()
    for add, offset in steps:
        day = EPOCH + timedelta(days=offset)
        async with UnitOfWork(sessions) as uow:
            repo = AnalyticsRepository(uow.session)
            await repo.lock_users([user])
            if add and day not in days:
                await add_streak_day(repo, user, LOGIN, day)
                days.add(day)
            elif not add and day in days:
                await remove_streak_day(repo, user, LOGIN, day)
                days.discard(day)
    assert await stored_runs(sessions, user, LOGIN) == runs_of(sorted(days))
    for offset in range(-1, 43):
        as_of = EPOCH + timedelta(days=offset)
        async with UnitOfWork(sessions) as uow:
            run = await AnalyticsRepository(uow.session).run_at_or_before(user, LOGIN, as_of)
        got = streak_as_of(run, as_of).model_dump(mode="json")
        # docs/spec/analytics.md, rule 8, recomputed from the day set itself.
        active = sorted(day for day in days if day <= as_of)
        if not active:
            assert got == {"current": 0, "longest": 0, "last_active_date": None}
            continue
        current, cursor = 0, as_of if as_of in days else as_of - timedelta(days=1)
        while cursor in days:
            current, cursor = current + 1, cursor - timedelta(days=1)
        assert got["current"] == current
        assert got["last_active_date"] == active[-1].isoformat()
        assert got["longest"] == max((run.length for run in runs_of(active)), default=0)


async def test_concurrent_batches_with_the_same_events_apply_them_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Two replicas holding the same redelivered batch: the inbox lets exactly one apply it."""
    user = uuid.uuid4()
    task = uuid.uuid4()
    events = [
        logged_in(user, at("2026-11-23T08:00:00Z"), usertz="Europe/Berlin"),
        logged_in(user, at("2026-11-24T08:00:00Z"), "refresh", usertz="Europe/Berlin"),
        completed(user, at("2026-11-24T09:00:00Z"), task, usertz="Europe/Berlin"),
    ]
    facts = [fact for fact in (decode(event.to_json()) for event in events) if fact]

    async def apply() -> int:
        async with UnitOfWork(sessions) as uow:
            result = await apply_facts(
                AnalyticsRepository(uow.session), facts, now=at("2026-11-26T00:00:00Z")
            )
            await asyncio.sleep(0.05)  # keep the transaction open while the other one races
        return result.applied

    applied = await asyncio.gather(*(apply() for _ in range(4)))
    assert sorted(applied) == [0, 0, 0, 3]
    async with UnitOfWork(sessions) as uow:
        days = await AnalyticsRepository(uow.session).days(
            user, date(2026, 11, 23), date(2026, 11, 29)
        )
    reference = Reference([as_reference(event) for event in events])
    expected = reference.days(user)
    assert [
        (day.local_date, day.logins, day.login_events, day.tasks_completed) for day in days
    ] == [
        (
            local_date,
            counts.logins,
            1 if counts.any_login else 0,
            len(counts.completed),
        )
        for local_date, counts in sorted(expected.items())
    ]


async def test_emptying_the_projections_waits_for_a_batch_in_flight(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A rebuild's clear and a live batch never interleave: the replay then counts everything.

    Were the clear to run beside the batch, it would delete the day row the batch updated
    but not the batch's new inbox row, and the replay would skip that event as a duplicate.
    """
    user = uuid.uuid4()
    first = logged_in(user, at("2026-11-23T08:00:00Z"), usertz="UTC")
    second = logged_in(user, at("2026-11-23T09:00:00Z"), usertz="UTC")
    facts = [fact for fact in (decode(event.to_json()) for event in (first, second)) if fact]
    now = at("2026-11-26T00:00:00Z")
    async with UnitOfWork(sessions) as uow:
        await apply_facts(AnalyticsRepository(uow.session), facts[:1], now=now)

    async def clear() -> None:
        async with UnitOfWork(sessions) as uow:
            await AnalyticsRepository(uow.session).clear_projections()

    async with UnitOfWork(sessions) as uow:
        await apply_facts(AnalyticsRepository(uow.session), facts[1:], now=now)
        clearing = asyncio.create_task(clear())
        await asyncio.sleep(0.2)  # let the clear start while this batch is uncommitted
    await clearing

    # The replay of a rebuild: both events again, from the start.
    async with UnitOfWork(sessions) as uow:
        await apply_facts(AnalyticsRepository(uow.session), facts, now=now)
        days = await AnalyticsRepository(uow.session).days(
            user, date(2026, 11, 23), date(2026, 11, 23)
        )
    assert [(day.logins, day.login_events) for day in days] == [(2, 2)]
