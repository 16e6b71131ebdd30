"""The changes feed: per-user change sequences, each task's latest one, and tombstones.

Revision ID: tasks0005
Revises: tasks0004
Create Date: 2026-12-03 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "tasks0005"
down_revision: str | None = "tasks0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "task_owners",
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("pruned_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("owner_id", name="pk_task_owners"),
    )
    op.create_table(
        "task_tombstones",
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("change_seq", sa.BigInteger(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("task_id", name="pk_task_tombstones"),
    )
    op.create_index(
        "ix_task_tombstones_owner_change", "task_tombstones", ["owner_id", "change_seq"]
    )
    op.create_index("ix_task_tombstones_deleted_at", "task_tombstones", ["deleted_at"])
    op.add_column(
        "tasks", sa.Column("change_seq", sa.BigInteger(), nullable=False, server_default="0")
    )
    # The tasks that exist get the first numbers of their owner's sequence, oldest first, so
    # that numbers stay distinct per owner (a feed page ends on a number, never inside one).
    op.execute(
        "UPDATE tasks SET change_seq = ranked.n FROM ("
        " SELECT id, row_number() OVER (PARTITION BY owner_id ORDER BY created_at, id) AS n"
        " FROM tasks) AS ranked WHERE tasks.id = ranked.id"
    )
    op.execute(
        "INSERT INTO task_owners (owner_id, last_seq, pruned_seq)"
        " SELECT owner_id, count(*), 0 FROM tasks GROUP BY owner_id"
    )
    op.create_index("ix_tasks_owner_change", "tasks", ["owner_id", "change_seq"])


def downgrade() -> None:
    op.drop_index("ix_tasks_owner_change", table_name="tasks")
    # Plain DROP COLUMN (SQLite 3.35+), not a batch rebuild: see the projects revision.
    op.execute("ALTER TABLE tasks DROP COLUMN change_seq")
    op.drop_index("ix_task_tombstones_deleted_at", table_name="task_tombstones")
    op.drop_index("ix_task_tombstones_owner_change", table_name="task_tombstones")
    op.drop_table("task_tombstones")
    op.drop_table("task_owners")
