"""Pruning: rows past their retention deleted in bounded chunks, by one replica at a time.

A service lists what it prunes as ``PruneTarget``s (a table and the condition that makes
a row old enough to go) and runs a ``Pruner`` as a ``PeriodicJob`` (``Pruner.job``) and from
its ``momentum-<service> prune`` command (``Pruner.prune``).

* Chunks: each statement deletes at most ``batch_size`` rows (``DELETE … WHERE key IN
  (SELECT key … LIMIT n)``) in its own short transaction, so a prune never holds many row
  locks nor one long transaction; a round stops when every target is done or when its time
  budget is spent (the rest goes at the next round).
* One replica at a time: on PostgreSQL every chunk's transaction first takes
  ``pg_try_advisory_xact_lock`` on a key stable per service and job; a replica that does not
  get it stops its round at once (another replica is pruning the same rows). SQLite is one
  process's database: it just runs.
* ``momentum_pruned_rows_total{service, table}`` counts what went.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession as SAAsyncSession
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from momentum_shared.db import execute
from momentum_shared.events import utcnow
from momentum_shared.lifespan import PeriodicJob
from momentum_shared.metrics import REGISTRY

logger = logging.getLogger("momentum.pruning")

SessionFactory = async_sessionmaker[AsyncSession] | async_sessionmaker[SAAsyncSession]

DEFAULT_BATCH_SIZE = 5000
DEFAULT_TIME_BUDGET_SECONDS = 30.0

PRUNED_ROWS = Counter(
    "momentum_pruned_rows_total",
    "Rows deleted by pruning after their retention, by table",
    ["service", "table"],
    registry=REGISTRY,
)


def lock_key(service: str, job: str) -> int:
    """The signed 64-bit advisory-lock key of one service's prune job (stable across
    replicas, releases and Python versions: a digest, not ``hash()``)."""
    digest = hashlib.sha256(f"momentum.prune.{service}.{job}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@dataclass(frozen=True, slots=True)
class PruneTarget:
    """One kind of row to prune: ``table``'s rows for which ``old(now)`` holds.

    ``name`` labels the metric and the result (the table's name unless two targets prune
    one table for different reasons). Rows are picked by the table's primary key.
    ``counted`` is called with the number of rows each chunk deleted (an older metric).
    """

    table: sa.Table
    old: Callable[[datetime], sa.ColumnElement[bool]]
    name: str = ""
    counted: Callable[[int], None] | None = None

    @property
    def label(self) -> str:
        return self.name or self.table.name

    def chunk(self, now: datetime, batch_size: int) -> sa.Delete:
        """``DELETE`` of at most ``batch_size`` rows that are old at ``now``."""
        key = list(self.table.primary_key.columns)
        picked = sa.select(*key).where(self.old(now)).limit(batch_size)
        if len(key) == 1:
            return sa.delete(self.table).where(key[0].in_(picked.scalar_subquery()))
        return sa.delete(self.table).where(sa.tuple_(*key).in_(picked))


@dataclass
class PruneResult:
    """What one round deleted per target; ``skipped`` when another replica held the lock,
    ``complete`` when nothing old was left (False: the time budget ran out first)."""

    deleted: dict[str, int] = field(default_factory=dict)
    skipped: bool = False
    complete: bool = True

    @property
    def total(self) -> int:
        return sum(self.deleted.values())

    def as_document(self) -> dict[str, Any]:
        return {"deleted": self.deleted, "skipped": self.skipped, "complete": self.complete}


class Pruner:
    """Deletes what ``targets`` say is old, in chunks, one replica at a time (see module)."""

    def __init__(
        self,
        session_factory: SessionFactory,
        targets: Sequence[PruneTarget],
        *,
        service: str,
        job: str = "prune",
        batch_size: int = DEFAULT_BATCH_SIZE,
        time_budget_seconds: float = DEFAULT_TIME_BUDGET_SECONDS,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.session_factory = session_factory
        self.targets = list(targets)
        self.service = service
        self.job_name = job
        self.lock_key = lock_key(service, job)
        self.batch_size = batch_size
        self.time_budget_seconds = time_budget_seconds
        self.clock = clock

    async def prune(self, *, now: datetime | None = None) -> PruneResult:
        """One round: every target in order, chunk by chunk, until done or out of time.

        ``now`` (default: the clock) is read once, so a round has one cutoff per target.
        """
        now = now or self.clock()
        deadline = time.monotonic() + self.time_budget_seconds
        result = PruneResult(deleted={target.label: 0 for target in self.targets})
        for target in self.targets:
            while True:
                if time.monotonic() > deadline:
                    result.complete = False
                    return self._report(result)
                deleted = await self._chunk(target, now)
                if deleted is None:
                    result.skipped = True
                    result.complete = False
                    return self._report(result)
                result.deleted[target.label] += deleted
                if deleted:
                    PRUNED_ROWS.labels(self.service, target.label).inc(deleted)
                    if target.counted is not None:
                        target.counted(deleted)
                if deleted < self.batch_size:
                    break
        return self._report(result)

    def job(self, *, interval_seconds: float) -> PeriodicJob:
        """The pruner as a periodic job (a failure is logged; the next round retries)."""
        return PeriodicJob(self.job_name, self.prune, interval_seconds=interval_seconds)

    async def _chunk(self, target: PruneTarget, now: datetime) -> int | None:
        """Delete one chunk in its own transaction; None when another replica prunes."""
        async with self.session_factory() as session, session.begin():
            connection = await session.connection()
            if connection.dialect.name == "postgresql":
                taken = await execute(
                    session, sa.select(sa.func.pg_try_advisory_xact_lock(self.lock_key))
                )
                if not taken.scalar():
                    return None
            outcome = await execute(session, target.chunk(now, self.batch_size))
        return int(getattr(outcome, "rowcount", 0) or 0)

    def _report(self, result: PruneResult) -> PruneResult:
        if result.skipped:
            logger.info(
                "prune skipped: another replica holds the lock",
                extra={"job": self.job_name, "rows": result.total},
            )
        elif result.total:
            logger.info(
                "pruned rows past their retention",
                extra={"job": self.job_name, "rows": result.total, "tables": result.deleted},
            )
        return result


__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_TIME_BUDGET_SECONDS",
    "PRUNED_ROWS",
    "PruneResult",
    "PruneTarget",
    "Pruner",
    "lock_key",
]
