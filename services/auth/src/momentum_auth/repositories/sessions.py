"""Queries on sessions: refresh-token families and their tokens; each takes the owner's id."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col, select

from momentum_auth.models import RefreshToken, RefreshTokenFamily
from momentum_shared.db import Repository


class SessionRepository(Repository):
    async def add_family(self, family: RefreshTokenFamily) -> RefreshTokenFamily:
        self.session.add(family)
        await self.session.flush()
        return family

    async def get_family(
        self, *, user_id: uuid.UUID, family_id: uuid.UUID
    ) -> RefreshTokenFamily | None:
        query = select(RefreshTokenFamily).where(
            RefreshTokenFamily.id == family_id, RefreshTokenFamily.user_id == user_id
        )
        return (await self.session.exec(query)).first()

    async def get_live_families(
        self, *, user_id: uuid.UUID, now: datetime
    ) -> Sequence[RefreshTokenFamily]:
        query = select(RefreshTokenFamily).where(
            RefreshTokenFamily.user_id == user_id,
            col(RefreshTokenFamily.revoked_at).is_(None),
            RefreshTokenFamily.expires_at > now,
        )
        return (await self.session.exec(query)).all()

    async def revoke_family(
        self, *, user_id: uuid.UUID, family_id: uuid.UUID, now: datetime, reason: str
    ) -> bool:
        """Revoke once: False when the family was already revoked (its event is not repeated)."""
        statement = (
            sa.update(RefreshTokenFamily)
            .where(
                col(RefreshTokenFamily.id) == family_id,
                col(RefreshTokenFamily.user_id) == user_id,
                col(RefreshTokenFamily.revoked_at).is_(None),
            )
            .values(revoked_at=now, revoked_reason=reason)
            .execution_options(synchronize_session="fetch")
        )
        result = await self.session.exec(statement)
        return bool(result.rowcount)

    async def add_refresh_token(self, token: RefreshToken) -> RefreshToken:
        self.session.add(token)
        await self.session.flush()
        return token

    async def find_refresh_token(
        self, *, token_hash: str
    ) -> tuple[RefreshToken, RefreshTokenFamily] | None:
        # The presented secret is the only handle a refresh request has; the owner comes
        # from it.
        query = (
            select(RefreshToken, RefreshTokenFamily)
            .join(RefreshTokenFamily, col(RefreshTokenFamily.id) == col(RefreshToken.family_id))
            .where(RefreshToken.token_hash == token_hash)
        )
        row = (await self.session.exec(query)).first()
        return None if row is None else (row[0], row[1])

    async def spend_refresh_token(
        self, *, user_id: uuid.UUID, token_id: uuid.UUID, now: datetime
    ) -> bool:
        """Mark the token used; False when another request spent it first (a replay)."""
        owned = select(RefreshTokenFamily.id).where(RefreshTokenFamily.user_id == user_id)
        statement = (
            sa.update(RefreshToken)
            .where(
                col(RefreshToken.id) == token_id,
                col(RefreshToken.used_at).is_(None),
                col(RefreshToken.family_id).in_(owned),
            )
            .values(used_at=now)
            .execution_options(synchronize_session="fetch")
        )
        result = await self.session.exec(statement)
        return bool(result.rowcount)
