"""The inbox of processed event ids, the per-day projections, streak runs and dead letters.

Revision ID: analytics0001
Revises:
Create Date: 2026-11-26 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "analytics0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "processed_events",
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("event_type", sa.String(length=200), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_processed_events"),
    )
    op.create_table(
        "analytics_users",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("timezone_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("timezone_event_id", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("user_id", name="pk_analytics_users"),
    )
    op.create_table(
        "daily_activity",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("local_date", sa.Date(), nullable=False),
        sa.Column("logins", sa.Integer(), nullable=False),
        sa.Column("login_events", sa.Integer(), nullable=False),
        sa.Column("tasks_created", sa.Integer(), nullable=False),
        sa.Column("tasks_completed", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "local_date", name="pk_daily_activity"),
    )
    op.create_table(
        "daily_tasks",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("local_date", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "local_date", "kind", "task_id", name="pk_daily_tasks"),
    )
    op.create_table(
        "floating_events",
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("local_date", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_floating_events"),
    )
    op.create_index("ix_floating_events_user_id", "floating_events", ["user_id"])
    op.create_table(
        "streak_runs",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("length", sa.Integer(), nullable=False),
        sa.Column("longest_before", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "kind", "start_date", name="pk_streak_runs"),
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("stream", sa.String(length=64), nullable=False),
        sa.Column("stream_sequence", sa.BigInteger(), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=True),
        sa.Column("deliveries", sa.Integer(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("error", sa.String(length=1000), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dead_letters"),
        sa.UniqueConstraint(
            "stream", "stream_sequence", name="uq_dead_letters_stream_stream_sequence"
        ),
    )


def downgrade() -> None:
    op.drop_table("dead_letters")
    op.drop_table("streak_runs")
    op.drop_index("ix_floating_events_user_id", table_name="floating_events")
    op.drop_table("floating_events")
    op.drop_table("daily_tasks")
    op.drop_table("daily_activity")
    op.drop_table("analytics_users")
    op.drop_table("processed_events")
