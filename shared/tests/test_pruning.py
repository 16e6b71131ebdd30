"""The shared pruner: chunks, time budget, one replica at a time on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from momentum_devtools.testing.revocations import eventually
from momentum_shared.db import UtcDateTime, create_session_factory
from momentum_shared.metrics import REGISTRY
from momentum_shared.pruning import Pruner, PruneTarget, lock_key

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
RETENTION = timedelta(days=7)

METADATA = sa.MetaData()
ITEMS = sa.Table(
    "items",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("done_at", UtcDateTime, nullable=True, index=True),
)
PAIRS = sa.Table(
    "pairs",
    METADATA,
    sa.Column("a", sa.String(10), primary_key=True),
    sa.Column("b", sa.String(10), primary_key=True),
    sa.Column("seen_at", UtcDateTime, nullable=False),
)

OLD_ITEMS = sa.and_(ITEMS.c.done_at.is_not(None), ITEMS.c.done_at < NOW - RETENTION)


def items_target() -> PruneTarget:
    return PruneTarget(
        ITEMS,
        lambda now: sa.and_(ITEMS.c.done_at.is_not(None), ITEMS.c.done_at < now - RETENTION),
    )


@pytest.fixture
async def engine(blank_database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(blank_database_url)
    async with engine.begin() as connection:
        await connection.run_sync(METADATA.create_all)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_session_factory(engine)


async def add_items(engine: AsyncEngine, *, old: int, recent: int, open_: int) -> None:
    """``old`` items done 8 days before NOW, ``recent`` done 6 days before, ``open_`` not done."""
    rows: list[dict[str, object]] = []
    for count, done_at in (
        (old, NOW - timedelta(days=8)),
        (recent, NOW - timedelta(days=6)),
        (open_, None),
    ):
        first = len(rows) + 1
        rows.extend({"id": first + n, "done_at": done_at} for n in range(count))
    async with engine.begin() as connection:
        await connection.execute(sa.insert(ITEMS), rows)


async def count(engine: AsyncEngine, where: sa.ColumnElement[bool] | None = None) -> int:
    query = sa.select(sa.func.count()).select_from(ITEMS)
    if where is not None:
        query = query.where(where)
    async with engine.connect() as connection:
        return int((await connection.execute(query)).scalar_one())


def pruned_metric(table: str) -> float:
    value = REGISTRY.get_sample_value(
        "momentum_pruned_rows_total", {"service": "test", "table": table}
    )
    return value or 0.0


async def test_rows_past_their_retention_go_in_chunks_and_the_others_stay(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await add_items(engine, old=23, recent=4, open_=5)
    before = pruned_metric("items")
    pruner = Pruner(sessions, [items_target()], service="test", batch_size=5)
    result = await pruner.prune(now=NOW)
    assert result.deleted == {"items": 23}
    assert result.complete
    assert not result.skipped
    assert await count(engine, OLD_ITEMS) == 0
    assert await count(engine) == 9  # the recent and the open ones
    assert pruned_metric("items") - before == 23
    assert (await pruner.prune(now=NOW)).deleted == {"items": 0}


async def test_a_composite_key_is_pruned_by_its_whole_key(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            sa.insert(PAIRS),
            [
                {"a": "x", "b": "1", "seen_at": NOW - timedelta(days=9)},
                {"a": "x", "b": "2", "seen_at": NOW},
                {"a": "y", "b": "1", "seen_at": NOW},
            ],
        )
    target = PruneTarget(PAIRS, lambda now: PAIRS.c.seen_at < now - RETENTION)
    result = await Pruner(sessions, [target], service="test", batch_size=1).prune(now=NOW)
    assert result.deleted == {"pairs": 1}
    async with engine.connect() as connection:
        left = (await connection.execute(sa.select(PAIRS.c.a, PAIRS.c.b))).all()
    assert sorted(tuple(row) for row in left) == [("x", "2"), ("y", "1")]


async def test_a_round_out_of_time_stops_and_the_next_round_goes_on(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await add_items(engine, old=3, recent=0, open_=0)
    spent = Pruner(sessions, [items_target()], service="test", time_budget_seconds=0.0)
    result = await spent.prune(now=NOW)
    assert not result.complete
    assert await count(engine) == 3
    assert (await Pruner(sessions, [items_target()], service="test").prune(now=NOW)).complete
    assert await count(engine) == 0


def test_the_lock_key_is_stable_and_differs_per_job() -> None:
    assert lock_key("auth", "prune") == lock_key("auth", "prune")
    assert lock_key("auth", "prune") != lock_key("tasks", "prune")
    assert -(2**63) <= lock_key("auth", "prune") < 2**63


async def hold_lock(engine: AsyncEngine, key: int, release: asyncio.Event) -> None:
    async with engine.begin() as connection:
        await connection.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))
        await release.wait()


async def advisory_locks_granted(engine: AsyncEngine) -> int:
    query = sa.text(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    async with engine.connect() as connection:
        return int((await connection.execute(query)).scalar_one())


async def test_on_postgresql_a_prune_skips_while_another_replica_prunes(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite is one process's database: its prune just runs")
    await add_items(engine, old=4, recent=1, open_=1)
    pruner = Pruner(sessions, [items_target()], service="test")
    release = asyncio.Event()
    holder = asyncio.create_task(hold_lock(engine, pruner.lock_key, release))
    try:
        await eventually(lambda: _granted(engine, 1))
        result = await pruner.prune(now=NOW)
        assert result.skipped
        assert not result.complete
        assert result.total == 0
        assert await count(engine) == 6
    finally:
        release.set()
        await holder
    assert (await pruner.prune(now=NOW)).deleted == {"items": 4}


async def test_of_two_concurrent_prunes_on_postgresql_one_runs_and_the_other_skips(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite is one process's database: its prune just runs")
    await add_items(engine, old=10, recent=2, open_=0)
    # Another transaction holds one old row, so the first prune's DELETE waits on it while
    # holding the prune lock: the second prune comes in exactly then.
    blocker = await engine.connect()
    await blocker.begin()
    await blocker.execute(sa.select(ITEMS.c.id).where(ITEMS.c.id == 1).with_for_update())
    first_engine = create_async_engine(engine.url)
    try:
        first = Pruner(create_session_factory(first_engine), [items_target()], service="test")
        second = Pruner(sessions, [items_target()], service="test")
        running = asyncio.create_task(first.prune(now=NOW))
        await eventually(lambda: _granted(engine, 1))
        skipped = await second.prune(now=NOW)
        assert skipped.skipped
        assert skipped.total == 0
        await blocker.rollback()
        ran = await running
        assert ran.deleted == {"items": 10}
        assert not ran.skipped
    finally:
        await blocker.close()
        await first_engine.dispose()
    assert await count(engine) == 2


async def _granted(engine: AsyncEngine, expected: int) -> bool:
    return await advisory_locks_granted(engine) == expected
