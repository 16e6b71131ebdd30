"""Queries on counted attempts: throttle entries and usual addresses (keyed by digests)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col, select

from momentum_auth.models import ThrottleEntry, UsualAddress
from momentum_shared.db import Repository


def _lock_id(key: str) -> int:
    """A signed 64-bit advisory-lock id for a throttling key."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)


class AttemptRepository(Repository):
    async def lock_keys(self, *, keys: Sequence[str]) -> None:
        """On PostgreSQL, a transaction-level advisory lock per key, always in ascending
        order (so two transactions never wait on each other); SQLite serialises writers."""
        if self.postgres:
            for lock_id in sorted({_lock_id(key) for key in keys}):
                await self.session.exec(select(sa.func.pg_advisory_xact_lock(lock_id)))

    async def lock_throttle_keys(self, *, keys: Sequence[str], before: datetime) -> None:
        """Serialise attempts counted under ``keys`` until the transaction ends.

        PostgreSQL takes a transaction-level advisory lock per key (in one order, so two
        attempts never wait on each other). SQLite has one writer at a time: the first
        statement is a write, which takes the database's write lock before anything is
        counted. Either way the write forgets this key's entries that have left every window.
        """
        await self.lock_keys(keys=keys)
        await self.session.exec(
            sa.delete(ThrottleEntry).where(
                col(ThrottleEntry.key).in_(list(keys)), col(ThrottleEntry.created_at) <= before
            )
        )

    async def entries_since(
        self, *, keys: Sequence[str], since: datetime
    ) -> dict[str, list[datetime]]:
        """Each key's entry times after ``since``, oldest first."""
        query = (
            select(ThrottleEntry.key, ThrottleEntry.created_at)
            .where(col(ThrottleEntry.key).in_(list(keys)), ThrottleEntry.created_at > since)
            .order_by(col(ThrottleEntry.created_at))
        )
        found: dict[str, list[datetime]] = {}
        for key, created_at in (await self.session.exec(query)).all():
            found.setdefault(key, []).append(created_at)
        return found

    async def add_entries(self, *, keys: Sequence[str], now: datetime) -> list[uuid.UUID]:
        entries = [ThrottleEntry(key=key, created_at=now) for key in keys]
        self.session.add_all(entries)
        await self.session.flush()
        return [entry.id for entry in entries]

    async def delete_entries(self, *, ids: Sequence[uuid.UUID]) -> None:
        if ids:
            await self.session.exec(
                sa.delete(ThrottleEntry).where(col(ThrottleEntry.id).in_(list(ids)))
            )

    async def clear_keys(self, *, patterns: Sequence[str]) -> int:
        """Delete the entries whose key matches any LIKE pattern; how many went."""
        if not patterns:
            return 0
        result = await self.session.exec(
            sa.delete(ThrottleEntry).where(
                sa.or_(*(col(ThrottleEntry.key).like(pattern) for pattern in patterns))
            )
        )
        return int(result.rowcount or 0)

    async def counts(
        self, *, patterns: Sequence[str], since: datetime
    ) -> list[tuple[str, int, datetime]]:
        """(key, entries, latest) of every key matching a LIKE pattern (all keys when none)."""
        query = select(
            ThrottleEntry.key, sa.func.count(), sa.func.max(ThrottleEntry.created_at)
        ).where(ThrottleEntry.created_at > since)
        if patterns:
            query = query.where(
                sa.or_(*(col(ThrottleEntry.key).like(pattern) for pattern in patterns))
            )
        query = query.group_by(col(ThrottleEntry.key)).order_by(col(ThrottleEntry.key))
        rows = (await self.session.exec(query)).all()
        return [(key, int(count), latest) for key, count, latest in rows]

    async def is_usual_address(
        self, *, account_key: str, address_key: str, since: datetime
    ) -> bool:
        query = select(UsualAddress.account_key).where(
            UsualAddress.account_key == account_key,
            UsualAddress.address_key == address_key,
            UsualAddress.last_signed_in_at > since,
        )
        return (await self.session.exec(query)).first() is not None

    async def remember_usual_address(
        self, *, account_key: str, address_key: str, now: datetime, keep: int
    ) -> None:
        """Record a successful sign-in from the address; only the ``keep`` latest stay."""
        row = await self.session.get(UsualAddress, (account_key, address_key))
        if row is None:
            self.session.add(
                UsualAddress(
                    account_key=account_key, address_key=address_key, last_signed_in_at=now
                )
            )
        else:
            row.last_signed_in_at = now
            self.session.add(row)
        await self.session.flush()
        newest = (
            select(UsualAddress.address_key)
            .where(UsualAddress.account_key == account_key)
            .order_by(col(UsualAddress.last_signed_in_at).desc(), col(UsualAddress.address_key))
            .limit(keep)
        )
        await self.session.exec(
            sa.delete(UsualAddress).where(
                col(UsualAddress.account_key) == account_key,
                col(UsualAddress.address_key).not_in(newest.scalar_subquery()),
            )
        )
