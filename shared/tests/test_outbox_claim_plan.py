"""The relay's claim at a million outbox rows on PostgreSQL: the partial index keeps it fast.

Before ``ix_outbox_claim`` the claim read and sorted the whole backlog (1.25 s per batch at
a million rows). This test builds a million-row outbox (mostly published, a backlog of
unpublished rows), analyses it, and asks PostgreSQL for the plan and execution time of the
relay's own claim statement (``due_query`` as ``RowLocks`` claims it).

This is the one timing assertion of the suite: the issue it closes asks for a claim under
10 ms at a million rows. It takes the median of several runs, each measured by PostgreSQL
itself (``EXPLAIN (ANALYZE)``'s execution time, without planning or the round trip).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import uuid
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.ext.asyncio import create_async_engine

from momentum_devtools.testing.resources import asyncpg_url, created_database
from momentum_shared.outbox import RowLocks, outbox_table
from momentum_shared.outbox._claims import due_query
from momentum_shared.outbox._table import CLAIM_INDEX

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

ROWS = 1_000_000
UNPUBLISHED = 20_000
BATCH = 500
RUNS = 5
LIMIT_MS = 10.0

# One INSERT … SELECT over the last two days (all due): the oldest rows published, the
# newest waiting (the backlog).
FILL = f"""
INSERT INTO outbox (id, subject, payload, created_at, available_at, published_at, attempts)
SELECT
    md5(n::text),
    'tasks.task.created',
    convert_to(repeat('x', 64), 'UTF8'),
    now() - interval '2 days' + n * interval '100 milliseconds',
    now() - interval '2 days' + n * interval '100 milliseconds',
    CASE WHEN n <= {ROWS - UNPUBLISHED}
        THEN now() - interval '2 days' + (n + 10) * interval '100 milliseconds'
    END,
    CASE WHEN n <= {ROWS - UNPUBLISHED} THEN 1 ELSE 0 END
FROM generate_series(1, {ROWS}) AS n
"""


def _indexes(node: dict[str, Any]) -> set[str]:
    """Every index a plan node or its children read."""
    found = {node["Index Name"]} if "Index Name" in node else set()
    for child in node.get("Plans", ()):
        found |= _indexes(child)
    return found


async def _measure(url: str) -> tuple[list[float], set[str], int]:
    table = outbox_table(sa.MetaData())
    engine = create_async_engine(asyncpg_url(url))
    try:
        async with engine.begin() as connection:
            await connection.run_sync(table.metadata.create_all)
    finally:
        await engine.dispose()
    claim = RowLocks.claiming(due_query(table, BATCH)).compile(
        dialect=asyncpg_dialect()  # type: ignore[no-untyped-call]
    )
    positions = compiled_positions(claim)
    connection = await asyncpg.connect(url, timeout=10)
    try:
        await connection.execute(FILL)
        await connection.execute("ANALYZE outbox")
        times: list[float] = []
        indexes: set[str] = set()
        claimed = 0
        for _ in range(RUNS):
            # Autocommit: the claim's row locks end with the statement.
            document = await connection.fetchval(
                f"EXPLAIN (ANALYZE, FORMAT JSON) {claim}", *positions
            )
            [plan] = json.loads(document)
            times.append(float(plan["Execution Time"]))
            indexes |= _indexes(plan["Plan"])
            claimed = int(plan["Plan"]["Actual Rows"])
        return times, indexes, claimed
    finally:
        await connection.close()


def compiled_positions(compiled: sa.sql.compiler.Compiled) -> list[Any]:
    """The statement's bound values in ``$n`` order."""
    params = compiled.params
    order = getattr(compiled, "positiontup", None) or list(params)
    return [params[name] for name in order]


def test_claiming_a_batch_from_a_million_outbox_rows_takes_under_10_ms() -> None:
    admin_url = os.environ.get("MOMENTUM_TEST_POSTGRES_URL")
    if not admin_url:
        pytest.skip("needs MOMENTUM_TEST_POSTGRES_URL (CI sets it)")
    name = f"momentum_test_claim_{uuid.uuid4().hex[:12]}"
    with created_database(admin_url.replace("+asyncpg", ""), name) as url:
        times, indexes, claimed = asyncio.run(_measure(url))
    assert claimed == BATCH
    assert CLAIM_INDEX in indexes, f"the claim read {indexes or 'no index'}"
    median = statistics.median(times)
    assert median < LIMIT_MS, f"median claim {median:.2f} ms over {RUNS} runs: {times}"
