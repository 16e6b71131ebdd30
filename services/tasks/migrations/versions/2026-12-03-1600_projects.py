"""Projects, one user's named groups of tasks, and each task's project.

Revision ID: tasks0004
Revises: tasks0003
Create Date: 2026-12-03 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "tasks0004"
down_revision: str | None = "tasks0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("name_folded", sa.String(length=480), nullable=False),
        sa.Column("color", sa.String(length=7), nullable=True),
        sa.Column("archived", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_projects"),
    )
    # Unique per owner ignoring case, enforced by the database (concurrent creates included).
    op.create_index("ux_projects_owner_name", "projects", ["owner_id", "name_folded"], unique=True)
    op.create_index(
        "ix_projects_owner_archived_name", "projects", ["owner_id", "archived", "name_folded"]
    )
    op.add_column("tasks", sa.Column("project_id", sa.Uuid(), nullable=True))
    op.create_index(
        "ix_tasks_owner_project_created", "tasks", ["owner_id", "project_id", "created_at", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_owner_project_created", table_name="tasks")
    # Plain DROP COLUMN (SQLite 3.35+): a batch rebuild of tasks would drop the old table,
    # and with foreign keys on that deletes every task's tags through their cascade.
    op.execute("ALTER TABLE tasks DROP COLUMN project_id")
    op.drop_index("ix_projects_owner_archived_name", table_name="projects")
    op.drop_index("ux_projects_owner_name", table_name="projects")
    op.drop_table("projects")
