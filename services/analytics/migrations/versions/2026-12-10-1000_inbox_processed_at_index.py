"""An index on the inbox's ``processed_at``, for the prune job.

The prune job forgets event ids processed longer than the inbox retention ago, a chunk at a
time; without this index every chunk would scan the whole inbox. On PostgreSQL it is built
``CONCURRENTLY``, so the consumer keeps writing meanwhile.

Revision ID: analytics0003
Revises: analytics0002
Create Date: 2026-12-10 10:00:00
"""

import contextlib
from collections.abc import Sequence

from alembic import op

revision: str = "analytics0003"
down_revision: str | None = "analytics0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_processed_events_processed_at"


def _block() -> tuple[contextlib.AbstractContextManager[object], bool]:
    concurrently = op.get_bind().dialect.name == "postgresql"
    block = op.get_context().autocommit_block() if concurrently else contextlib.nullcontext()
    return block, concurrently


def upgrade() -> None:
    block, concurrently = _block()
    with block:
        op.create_index(
            INDEX,
            "processed_events",
            ["processed_at"],
            postgresql_concurrently=concurrently,
            if_not_exists=True,
        )


def downgrade() -> None:
    block, concurrently = _block()
    with block:
        op.drop_index(
            INDEX,
            table_name="processed_events",
            postgresql_concurrently=concurrently,
            if_exists=True,
        )
