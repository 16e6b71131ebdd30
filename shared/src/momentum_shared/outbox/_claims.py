"""How a relay claims due rows: row locks on PostgreSQL, one elected relay per SQLite file.

Both strategies answer the same call: claim a batch, hand it to ``publish``, and record
what came back with ``mark``, each in the transaction shape its database needs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession as SAAsyncSession
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from momentum_shared.db import execute
from momentum_shared.events import utcnow

_flock: Callable[[int], None] | None
try:
    import fcntl

    def _flock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

except ImportError:  # pragma: no cover - Windows
    _flock = None

SessionFactory = async_sessionmaker[AsyncSession] | async_sessionmaker[SAAsyncSession]
Session = AsyncSession | SAAsyncSession


class RelayUnavailable(Exception):
    """The relay cannot publish right now (NATS down, or another relay holds the lease)."""


@dataclass(frozen=True, slots=True)
class Claimed:
    id: str
    subject: str
    payload: bytes
    trace_context: str | None = None


Outcome = tuple[list[str], dict[str, str]]
"""The ids published and, per refused id, the reason."""
Publish = Callable[[list[Claimed]], Awaitable[Outcome]]
Mark = Callable[[Session, Outcome], Awaitable[None]]


class Claims(Protocol):
    """One relay round: claim due rows, publish them, mark the outcome; the count published."""

    async def relay(self, query: sa.Select[Any], publish: Publish, mark: Mark) -> int: ...

    def close(self) -> None: ...


class RowLocks:
    """PostgreSQL: ``FOR UPDATE SKIP LOCKED``; claimed rows stay locked until marked.

    Any number of replicas relay side by side, each skipping the rows another holds.
    """

    def __init__(self, session_factory: SessionFactory) -> None:
        self.session_factory = session_factory

    @staticmethod
    def claiming(query: sa.Select[Any]) -> sa.Select[Any]:
        """The statement that claims ``query``'s rows: locked, skipping those others hold."""
        return query.with_for_update(skip_locked=True)

    async def relay(self, query: sa.Select[Any], publish: Publish, mark: Mark) -> int:
        async with self.session_factory() as session, session.begin():
            result = await execute(session, self.claiming(query))
            rows = [Claimed(*row) for row in result.all()]
            if not rows:
                return 0
            outcome = await publish(rows)
            await mark(session, outcome)
        return len(outcome[0])

    def close(self) -> None:
        return None


class SqliteLease:
    """SQLite: one relay per file, elected by an exclusive ``flock`` beside the database.

    SQLite cannot lock rows, so two relays would publish the same rows twice. The lock
    file elects one relay per host (the only place a SQLite file is shared); the others
    stand by and retry with backoff. The lock dies with its process, so a crashed relay
    never blocks the next one. The elected relay reads, publishes, then marks in a short
    write, holding no lock while it publishes, so API writes never wait for NATS. A crash
    between publish and mark re-publishes the rows; JetStream drops them within its
    duplicate window (same ``Nats-Msg-Id``) and consumers dedupe by event id anyway.
    """

    def __init__(self, session_factory: SessionFactory, database: str | None) -> None:
        self.session_factory = session_factory
        self.database = database
        self._lease: IO[bytes] | None = None

    def hold(self) -> None:
        """Be the one relay of this SQLite file, or raise ``RelayUnavailable`` (stand by)."""
        if self._lease is not None or not self.database or self.database == ":memory:":
            return
        if _flock is None:  # pragma: no cover - no flock on this platform: trust the operator
            return
        path = Path(f"{self.database}.relay.lock")
        handle = path.open("a+b")
        try:
            _flock(handle.fileno())
        except OSError:
            handle.close()
            raise RelayUnavailable(
                f"standing by: another relay publishes this SQLite outbox ({path})"
            ) from None
        self._lease = handle

    async def relay(self, query: sa.Select[Any], publish: Publish, mark: Mark) -> int:
        self.hold()
        async with self.session_factory() as session:
            rows = [Claimed(*row) for row in (await execute(session, query)).all()]
        if not rows:
            return 0
        outcome = await publish(rows)
        async with self.session_factory() as session, session.begin():
            await mark(session, outcome)
        return len(outcome[0])

    def close(self) -> None:
        if self._lease is not None:
            self._lease.close()  # releases the flock
            self._lease = None


async def claims_for(session_factory: SessionFactory) -> Claims:
    """The strategy that fits the database behind ``session_factory``."""
    async with session_factory() as session:
        bind = session.get_bind()
        dialect, database = bind.dialect.name, bind.engine.url.database
    if dialect == "postgresql":
        return RowLocks(session_factory)
    return SqliteLease(session_factory, database)


def due_query(table: sa.Table, batch_size: int) -> sa.Select[tuple[str, str, bytes, str | None]]:
    """Unpublished rows that are due, oldest first (the order consumers see).

    The filter and order match the partial index ``ix_outbox_claim`` (``_table.py``), so
    PostgreSQL walks that index and stops after ``batch_size`` due rows.
    """
    return (
        sa.select(table.c.id, table.c.subject, table.c.payload, table.c.trace_context)
        .where(table.c.published_at.is_(None), table.c.available_at <= utcnow())
        .order_by(table.c.created_at, table.c.id)
        .limit(batch_size)
    )
