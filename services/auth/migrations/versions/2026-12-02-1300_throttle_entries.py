"""Throttling entries replace login failures; addresses accounts usually sign in from.

``throttle_entries`` holds failure reservations (written before a password is checked) and
request-budget entries, keyed by digests. ``usual_addresses`` remembers where each account
signed in successfully, so failures from elsewhere do not slow its owner down. The old
failure rows counted under other keys and expire within minutes: they are not carried over.

Revision ID: auth0005
Revises: auth0004
Create Date: 2026-12-02 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "auth0005"
down_revision: str | None = "auth0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.drop_index("ix_login_failures_failed_at", table_name="login_failures")
    op.drop_index("ix_login_failures_key_failed_at", table_name="login_failures")
    op.drop_table("login_failures")
    op.create_table(
        "throttle_entries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_throttle_entries"),
    )
    op.create_index("ix_throttle_entries_key_created_at", "throttle_entries", ["key", "created_at"])
    op.create_index("ix_throttle_entries_created_at", "throttle_entries", ["created_at"])
    op.create_table(
        "usual_addresses",
        sa.Column("account_key", sa.String(length=40), nullable=False),
        sa.Column("address_key", sa.String(length=40), nullable=False),
        _timestamp("last_signed_in_at"),
        sa.PrimaryKeyConstraint("account_key", "address_key", name="pk_usual_addresses"),
    )
    op.create_index(
        "ix_usual_addresses_last_signed_in_at", "usual_addresses", ["last_signed_in_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_usual_addresses_last_signed_in_at", table_name="usual_addresses")
    op.drop_table("usual_addresses")
    op.drop_index("ix_throttle_entries_created_at", table_name="throttle_entries")
    op.drop_index("ix_throttle_entries_key_created_at", table_name="throttle_entries")
    op.drop_table("throttle_entries")
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=80), nullable=False),
        _timestamp("failed_at"),
        sa.PrimaryKeyConstraint("id", name="pk_login_failures"),
    )
    op.create_index("ix_login_failures_key_failed_at", "login_failures", ["key", "failed_at"])
    op.create_index("ix_login_failures_failed_at", "login_failures", ["failed_at"])
