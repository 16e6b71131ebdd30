"""The outbox table, attached to the metadata of the service that owns it."""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable
from datetime import datetime
from typing import ClassVar, Protocol

import sqlalchemy as sa
from opentelemetry import propagate, trace
from sqlalchemy.ext.asyncio import AsyncSession as SAAsyncSession
from sqlalchemy.orm import Session, registry
from sqlmodel.ext.asyncio.session import AsyncSession

from momentum_shared.db import UtcDateTime
from momentum_shared.events import CloudEvent, utcnow
from momentum_shared.tracing import tracing_enabled

TABLE_NAME = "outbox"
CLAIM_INDEX = "ix_outbox_claim"

# Session.info keys: the outbox tables this transaction added rows to, and whether the
# session already carries the commit hooks below.
_PENDING = "momentum_outbox_pending"
_HOOKED = "momentum_outbox_hooked"

# In-process wakers per engine and outbox table (the relays running in this process on
# that engine); weak, so a relay or engine that is gone is forgotten.
_wakers: weakref.WeakKeyDictionary[
    sa.Engine, weakref.WeakKeyDictionary[sa.Table, weakref.WeakSet[Waker]]
] = weakref.WeakKeyDictionary()


class Waker(Protocol):
    """Something to wake when a commit added outbox rows (an ``OutboxRelay``)."""

    def wake(self) -> None: ...


def notify_channel(table: sa.Table) -> str:
    """The PostgreSQL channel a commit adding rows to ``table`` notifies (database-scoped)."""
    return f"momentum_{table.name}"


def register_waker(engine: sa.Engine, table: sa.Table, waker: Waker) -> Callable[[], None]:
    """Wake ``waker`` whenever a session on ``engine`` commits rows into ``table``.

    Returns the undo. Other engines (other replicas) reach it through NOTIFY only.
    """
    tables = _wakers.setdefault(engine, weakref.WeakKeyDictionary())
    wakers = tables.setdefault(table, weakref.WeakSet())
    wakers.add(waker)
    return lambda: wakers.discard(waker)


def outbox_table(metadata: sa.MetaData) -> sa.Table:
    """Declare the ``outbox`` table on ``metadata`` (the calling service's own).

    One row is one event waiting to be (or already) published; ``published_at`` marks it
    done. The relay claims unpublished rows oldest first through the partial index
    ``ix_outbox_claim`` (``created_at, id`` where ``published_at IS NULL``), which holds only
    the backlog, in the claim's order; pruning finds published rows by ``ix_outbox_published_at``.
    ``trace_context`` is the trace context of the transaction that wrote the row (the
    propagators' carrier as JSON, ``{"traceparent": …, "tracestate": …}``), NULL when
    tracing is off or the writer was in no span.
    """
    return sa.Table(
        TABLE_NAME,
        metadata,
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False, default=utcnow),
        sa.Column("available_at", UtcDateTime, nullable=False, default=utcnow),
        sa.Column("published_at", UtcDateTime, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, default=0, server_default="0"),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("trace_context", sa.Text, nullable=True),
        # Exactly the claim query's filter and order (``due_query``): the relay reads the
        # first rows of this index and stops, however long the backlog.
        sa.Index(
            CLAIM_INDEX,
            "created_at",
            "id",
            postgresql_where=sa.text("published_at IS NULL"),
            sqlite_where=sa.text("published_at IS NULL"),
        ),
        sa.Index("ix_outbox_published_at", "published_at"),
    )


class OutboxEvent:
    """One outbox row as an object; ``outbox_model`` maps a subclass per service."""

    __table__: ClassVar[sa.Table]

    id: str
    subject: str
    payload: bytes
    created_at: datetime
    available_at: datetime
    published_at: datetime | None
    attempts: int
    last_error: str | None
    trace_context: str | None

    def __init__(
        self,
        *,
        id: str,
        subject: str,
        payload: bytes,
        created_at: datetime,
        trace_context: str | None = None,
    ) -> None:
        self.id = id
        self.subject = subject
        self.payload = payload
        self.created_at = created_at
        self.available_at = utcnow()
        self.published_at = None
        self.attempts = 0
        self.last_error = None
        self.trace_context = trace_context


def outbox_model(owner: registry, name: str = "OutboxEvent") -> type[OutboxEvent]:
    """Declare the outbox table on ``owner``'s metadata and map an ``OutboxEvent`` class to it.

    ``owner`` is the registry of the calling service's models (``class Base(SQLModel,
    registry=owner)``), so the table lives in that service's metadata and migrations.
    """
    table = outbox_table(owner.metadata)
    model = type(name, (OutboxEvent,), {"__table__": table})
    owner.map_imperatively(model, table)
    return model


def enqueue(
    session: AsyncSession | SAAsyncSession, model: type[OutboxEvent], event: CloudEvent
) -> None:
    """Add ``event`` to the outbox inside the caller's transaction (flushes, never commits).

    The commit that makes the row visible also wakes the relays: on PostgreSQL a
    ``pg_notify`` sent in the same transaction reaches every replica's listening relay
    (and is dropped with a rollback); in this process the relays of the table are woken
    right after the commit, before the response is written.

    With tracing on, the row keeps the current span's context, so that the relay publishes
    the event in the same trace as the request that caused it.
    """
    sync = session.sync_session
    session.add(
        model(
            id=event.id,
            subject=event.type,
            payload=event.to_json(),
            created_at=event.time,
            trace_context=current_trace_context() if tracing_enabled() else None,
        )
    )
    pending: set[sa.Table] = sync.info.setdefault(_PENDING, set())
    pending.add(model.__table__)
    if not sync.info.get(_HOOKED):
        sync.info[_HOOKED] = True
        sa.event.listen(sync, "before_commit", _notify_replicas)
        sa.event.listen(sync, "after_commit", _wake_this_process)
        sa.event.listen(sync, "after_rollback", _forget_pending)


def current_trace_context() -> str | None:
    """The current span's context as the propagators write it, in JSON; None outside a span."""
    if not trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return json.dumps(carrier, separators=(",", ":")) if carrier else None


def _notify_replicas(session: Session) -> None:
    pending: set[sa.Table] = session.info.get(_PENDING, set())
    if not pending:
        return
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        return  # SQLite: a single host, the in-process wake is all there is
    for table in pending:
        connection.execute(sa.select(sa.func.pg_notify(notify_channel(table), "")))


def _wake_this_process(session: Session) -> None:
    pending: set[sa.Table] = session.info.pop(_PENDING, set())
    bind = session.bind
    engine = bind.engine if bind is not None else None
    tables = _wakers.get(engine) if engine is not None else None
    if not tables:
        return
    for table in pending:
        for waker in list(tables.get(table, ())):
            waker.wake()


def _forget_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)
