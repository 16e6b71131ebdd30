"""The outbox's claim index: ``(created_at, id) WHERE published_at IS NULL``.

The relay claims due rows with ``WHERE published_at IS NULL AND available_at <= now ORDER BY
created_at, id LIMIT n``. The old partial index led with ``available_at``, so PostgreSQL read
and sorted the whole backlog for every batch (1.25 s at a million rows); this one holds the
backlog in the claim's order, and the claim reads its first rows and stops. It replaces the
old one, which no query needs any more.

On PostgreSQL both indexes are built and dropped ``CONCURRENTLY`` (outside the migration's
transaction), so writers are not blocked while a large outbox is indexed.

Revision ID: tasks0008
Revises: tasks0007
Create Date: 2026-12-03 20:00:00
"""

import contextlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "tasks0008"
down_revision: str | None = "tasks0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNPUBLISHED = sa.text("published_at IS NULL")


def _concurrently() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _swap(create: str, columns: list[str], drop: str) -> None:
    concurrently = _concurrently()
    block = op.get_context().autocommit_block() if concurrently else contextlib.nullcontext()
    with block:
        op.create_index(
            create,
            "outbox",
            columns,
            postgresql_where=UNPUBLISHED,
            sqlite_where=UNPUBLISHED,
            postgresql_concurrently=concurrently,
            if_not_exists=True,
        )
        op.drop_index(
            drop, table_name="outbox", postgresql_concurrently=concurrently, if_exists=True
        )


def upgrade() -> None:
    _swap("ix_outbox_claim", ["created_at", "id"], "ix_outbox_unpublished")


def downgrade() -> None:
    _swap("ix_outbox_unpublished", ["available_at", "created_at"], "ix_outbox_claim")
