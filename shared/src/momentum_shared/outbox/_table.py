"""The outbox table, attached to the metadata of the service that owns it."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession as SAAsyncSession
from sqlalchemy.orm import registry
from sqlmodel.ext.asyncio.session import AsyncSession

from momentum_shared.db import UtcDateTime
from momentum_shared.events import CloudEvent, utcnow

TABLE_NAME = "outbox"


def outbox_table(metadata: sa.MetaData) -> sa.Table:
    """Declare the ``outbox`` table on ``metadata`` (the calling service's own).

    One row is one event waiting to be (or already) published; ``published_at`` marks it
    done. The relay scans only unpublished rows, which the partial index keeps small.
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
        sa.Index(
            "ix_outbox_unpublished",
            "available_at",
            "created_at",
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

    def __init__(self, *, id: str, subject: str, payload: bytes, created_at: datetime) -> None:
        self.id = id
        self.subject = subject
        self.payload = payload
        self.created_at = created_at
        self.available_at = utcnow()
        self.published_at = None
        self.attempts = 0
        self.last_error = None


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
    """Add ``event`` to the outbox inside the caller's transaction (flushes, never commits)."""
    session.add(
        model(id=event.id, subject=event.type, payload=event.to_json(), created_at=event.time)
    )
