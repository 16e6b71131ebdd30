"""An index on ``refresh_tokens.expires_at``, for the prune job.

The prune job deletes refresh tokens expired for longer than the retention, a chunk at a
time; without this index every chunk would scan the whole table.

Revision ID: auth0008
Revises: auth0007
Create Date: 2026-12-03 20:10:00
"""

import contextlib
from collections.abc import Sequence

from alembic import op

revision: str = "auth0008"
down_revision: str | None = "auth0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_refresh_tokens_expires_at"


def _block() -> tuple[contextlib.AbstractContextManager[object], bool]:
    concurrently = op.get_bind().dialect.name == "postgresql"
    block = op.get_context().autocommit_block() if concurrently else contextlib.nullcontext()
    return block, concurrently


def upgrade() -> None:
    block, concurrently = _block()
    with block:
        op.create_index(
            INDEX,
            "refresh_tokens",
            ["expires_at"],
            postgresql_concurrently=concurrently,
            if_not_exists=True,
        )


def downgrade() -> None:
    block, concurrently = _block()
    with block:
        op.drop_index(
            INDEX,
            table_name="refresh_tokens",
            postgresql_concurrently=concurrently,
            if_exists=True,
        )
