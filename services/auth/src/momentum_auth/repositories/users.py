"""Queries on users."""

from __future__ import annotations

import uuid

from sqlmodel import select

from momentum_auth.models import User
from momentum_shared.db import Repository


class UserRepository(Repository):
    async def get(self, user_id: uuid.UUID) -> User | None:
        return await self.session.get(User, user_id)

    async def get_by_email(self, email_normalized: str) -> User | None:
        # Sign-in and registration know only the email: this lookup is how the owner is found.
        query = select(User).where(User.email_normalized == email_normalized)
        return (await self.session.exec(query)).first()

    async def add(self, user: User) -> User:
        self.session.add(user)
        await self.session.flush()
        return user
