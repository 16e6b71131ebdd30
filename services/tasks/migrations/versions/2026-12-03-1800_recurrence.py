"""Recurring tasks: the rule, the series it started, and the last recurring completion.

Revision ID: tasks0006
Revises: tasks0005
Create Date: 2026-12-03 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "tasks0006"
down_revision: str | None = "tasks0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("recurrence", "recurrence_start", "recurrence_completed", "last_completed_at")


def upgrade() -> None:
    op.add_column("tasks", sa.Column("recurrence", sa.String(length=500), nullable=True))
    op.add_column("tasks", sa.Column("recurrence_start", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "tasks",
        sa.Column("recurrence_completed", sa.Integer(), nullable=False, server_default="0"),
    )
    op.add_column(
        "tasks", sa.Column("last_completed_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+), not a batch rebuild: see the projects revision.
    for column in reversed(COLUMNS):
        op.execute(f"ALTER TABLE tasks DROP COLUMN {column}")
