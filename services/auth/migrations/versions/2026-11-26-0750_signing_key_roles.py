"""Signing keys get a role: the one "active" key signs, the one "next" key is pre-published.

A unique constraint on the role keeps replicas that rotate at the same moment from
leaving two active keys or two next keys; retired keys have no role.

Revision ID: auth0004
Revises: auth0003
Create Date: 2026-11-26 08:30:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision: str = "auth0004"
down_revision: str | None = "auth0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A superseded key that was never marked retired stays published this long: longer than the
# longest access-token lifetime the settings allow (one day) plus any leeway.
_SUPERSEDED_PUBLISHED_FOR = timedelta(days=1, hours=1)


def _utc(value: object) -> datetime:
    if isinstance(value, str):  # SQLite returns the stored text
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def upgrade() -> None:
    with op.batch_alter_table("signing_keys") as batch:
        batch.add_column(sa.Column("role", sa.String(length=8), nullable=True))
        batch.alter_column("activates_at", existing_type=sa.DateTime(timezone=True), nullable=True)
    keys = sa.table(
        "signing_keys",
        sa.column("kid", sa.String()),
        sa.column("role", sa.String()),
        sa.column("activates_at", sa.DateTime(timezone=True)),
        sa.column("retired_at", sa.DateTime(timezone=True)),
        sa.column("expires_at", sa.DateTime(timezone=True)),
    )
    bind = op.get_bind()
    now = datetime.now(UTC)
    # Untyped read: SQLite hands back the stored text whatever wrote it.
    live = [
        (str(kid), _utc(created_at), _utc(activates_at))
        for kid, created_at, activates_at in bind.execute(
            sa.text(
                "SELECT kid, created_at, activates_at FROM signing_keys WHERE retired_at IS NULL"
            )
        )
    ]
    # The same choice the previous code made: the latest activated key signs; a key
    # scheduled for later is the pre-published next one; any other is superseded.
    signing = sorted(
        (key for key in live if key[2] <= now), key=lambda k: (k[2], k[1], k[0]), reverse=True
    )
    scheduled = sorted(
        (key for key in live if key[2] > now), key=lambda k: (k[2], k[1], k[0]), reverse=True
    )
    if signing:
        active = signing[0]
        bind.execute(keys.update().where(keys.c.kid == active[0]).values(role="active"))
        for kid, _created, _activated in signing[1:]:
            bind.execute(
                keys.update()
                .where(keys.c.kid == kid)
                .values(retired_at=active[2], expires_at=now + _SUPERSEDED_PUBLISHED_FOR)
            )
    if scheduled:
        # Never signed: it becomes the next key, and its activation time is set when promoted.
        bind.execute(
            keys.update()
            .where(keys.c.kid == scheduled[0][0])
            .values(role="next", activates_at=None)
        )
        for kid, _created, _activated in scheduled[1:]:
            bind.execute(keys.delete().where(keys.c.kid == kid))
    with op.batch_alter_table("signing_keys") as batch:
        batch.create_unique_constraint("uq_signing_keys_role", ["role"])


def downgrade() -> None:
    # A next key never signed a token: dropping it loses nothing.
    op.execute("DELETE FROM signing_keys WHERE role = 'next'")
    op.execute("UPDATE signing_keys SET activates_at = created_at WHERE activates_at IS NULL")
    with op.batch_alter_table("signing_keys") as batch:
        batch.drop_constraint("uq_signing_keys_role", type_="unique")
        batch.drop_column("role")
        batch.alter_column("activates_at", existing_type=sa.DateTime(timezone=True), nullable=False)
