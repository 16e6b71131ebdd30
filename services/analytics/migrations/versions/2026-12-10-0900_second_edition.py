"""Analytics second edition: goals, classified completions, task priorities.

Revision ID: analytics0002
Revises: analytics0001
Create Date: 2026-12-10 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "analytics0002"
down_revision: str | None = "analytics0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CLASSIFIED = (
    "completed_on_time",
    "completed_late",
    "completed_undated",
    "completed_low",
    "completed_normal",
    "completed_high",
)


def upgrade() -> None:
    with op.batch_alter_table("daily_activity") as batch:
        for name in CLASSIFIED:
            batch.add_column(sa.Column(name, sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "task_completions",
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("local_date", sa.Date(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("event_id", name="pk_task_completions"),
    )
    op.create_index("ix_task_completions_user_day", "task_completions", ["user_id", "local_date"])
    op.create_index("ix_task_completions_user_task", "task_completions", ["user_id", "task_id"])
    op.create_table(
        "task_priorities",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("priority", sa.String(length=16), nullable=False),
        sa.Column("priority_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("priority_event_id", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "task_id", name="pk_task_priorities"),
    )
    op.create_table(
        "goals",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("effective_date", sa.Date(), nullable=False),
        sa.Column("daily_tasks", sa.Integer(), nullable=True),
        sa.Column("weekly_tasks", sa.Integer(), nullable=True),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "effective_date", name="pk_goals"),
    )


def downgrade() -> None:
    op.drop_table("goals")
    op.drop_table("task_priorities")
    op.drop_index("ix_task_completions_user_task", table_name="task_completions")
    op.drop_index("ix_task_completions_user_day", table_name="task_completions")
    op.drop_table("task_completions")
    with op.batch_alter_table("daily_activity") as batch:
        for name in reversed(CLASSIFIED):
            batch.drop_column(name)
