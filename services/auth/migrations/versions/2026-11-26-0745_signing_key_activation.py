"""Signing keys get an activation time, so a successor can be published before it signs.

Revision ID: auth0003
Revises: auth0002
Create Date: 2026-11-26 07:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "auth0003"
down_revision: str | None = "auth0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("signing_keys") as batch:
        batch.add_column(sa.Column("activates_at", sa.DateTime(timezone=True), nullable=True))
    # Every existing key became active when it was created.
    op.execute("UPDATE signing_keys SET activates_at = created_at")
    with op.batch_alter_table("signing_keys") as batch:
        batch.alter_column("activates_at", existing_type=sa.DateTime(timezone=True), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("signing_keys") as batch:
        batch.drop_column("activates_at")
