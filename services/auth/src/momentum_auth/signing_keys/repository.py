"""Queries on signing keys (not user data)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col, select

from momentum_auth.models import SigningKey
from momentum_shared.db import Repository

ACTIVE = "active"
NEXT = "next"


def _published(now: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(col(SigningKey.expires_at).is_(None), col(SigningKey.expires_at) > now)


class SigningKeyRepository(Repository):
    async def get_in_role(self, *, role: str) -> SigningKey | None:
        """The active or the next key (the unique constraint allows one of each)."""
        # populate_existing: after a concurrent rotation the row changed under this session.
        query = (
            select(SigningKey)
            .where(SigningKey.role == role)
            .execution_options(populate_existing=True)
        )
        return (await self.session.exec(query)).first()

    async def get_active(self) -> SigningKey | None:
        """The key that signs."""
        return await self.get_in_role(role=ACTIVE)

    async def get_published(self, *, now: datetime) -> Sequence[SigningKey]:
        query = (
            select(SigningKey)
            .where(_published(now))
            .order_by(col(SigningKey.created_at).desc(), col(SigningKey.kid).desc())
        )
        return (await self.session.exec(query)).all()

    async def add_unless_role_taken(self, key: SigningKey) -> bool:
        """Insert ``key`` in its role; False when another replica filled that role first.

        ``ON CONFLICT DO NOTHING`` rather than a caught IntegrityError: the conflict neither
        aborts the transaction (PostgreSQL) nor needs a savepoint.
        """
        values = key.model_dump()
        statement = self.insert(SigningKey).values(**values).on_conflict_do_nothing()
        result = await self.session.exec(statement)
        return bool(result.rowcount)

    async def retire(self, *, kid: str, now: datetime, expires_at: datetime) -> bool:
        """Stop the active key ``kid`` from signing; False when it was no longer the active key.

        The condition on the role makes this the rotation's lock: a concurrent rotation's
        UPDATE of the same row waits for this transaction, then matches nothing.
        """
        statement = (
            sa.update(SigningKey)
            .where(col(SigningKey.kid) == kid, col(SigningKey.role) == ACTIVE)
            .values(role=None, retired_at=now, expires_at=expires_at)
            .execution_options(synchronize_session=False)
        )
        result = await self.session.exec(statement)
        return bool(result.rowcount)

    async def promote(self, *, kid: str, now: datetime) -> bool:
        """The next key ``kid`` signs from ``now``; False when it was no longer the next key."""
        statement = (
            sa.update(SigningKey)
            .where(col(SigningKey.kid) == kid, col(SigningKey.role) == NEXT)
            .values(role=ACTIVE, activates_at=now)
            .execution_options(synchronize_session=False)
        )
        result = await self.session.exec(statement)
        return bool(result.rowcount)

    async def delete_expired(self, *, now: datetime) -> int:
        """Private keys that can no longer verify a live token are destroyed, not archived."""
        statement = sa.delete(SigningKey).where(
            col(SigningKey.role).is_(None),
            col(SigningKey.expires_at).is_not(None),
            col(SigningKey.expires_at) <= now,
        )
        result = await self.session.exec(statement)
        return int(result.rowcount or 0)
