"""The transactional outbox: events written in the same transaction as the change they describe.

The relay that publishes these rows to JetStream lives here too, so auth and tasks share it.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from momentum_shared.events import CloudEvent, utcnow


class OutboxEvent(SQLModel, table=True):
    """One event waiting to be (or already) published; ``published_at`` marks it done."""

    __tablename__ = "outbox"

    id: str = Field(primary_key=True, max_length=64)
    subject: str = Field(max_length=200)
    payload: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    created_at: datetime = Field(sa_type=sa.DateTime(timezone=True), default_factory=utcnow)
    available_at: datetime = Field(sa_type=sa.DateTime(timezone=True), default_factory=utcnow)
    published_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=500)


def enqueue(session: AsyncSession, event: CloudEvent) -> OutboxEvent:
    """Add ``event`` to the outbox inside the caller's transaction (flushes, never commits)."""
    row = OutboxEvent(
        id=event.id, subject=event.type, payload=event.to_json(), created_at=event.time
    )
    session.add(row)
    return row
