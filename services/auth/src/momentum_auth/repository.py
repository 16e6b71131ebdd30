"""Every query of the auth service; each one on user data takes the owner's id."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from momentum_auth.models import (
    RefreshToken,
    RefreshTokenFamily,
    SigningKey,
    ThrottleEntry,
    User,
    UsualAddress,
)
from momentum_shared.db import conflict_insert

# --- users ---------------------------------------------------------------------------------


async def get_user(session: AsyncSession, *, user_id: uuid.UUID) -> User | None:
    return await session.get(User, user_id)


async def get_user_by_email(session: AsyncSession, *, email_normalized: str) -> User | None:
    # Sign-in and registration know only the email: this lookup is how the owner is found.
    query = select(User).where(User.email_normalized == email_normalized)
    return (await session.exec(query)).first()


async def add_user(session: AsyncSession, user: User) -> User:
    session.add(user)
    await session.flush()
    return user


# --- signing keys (not user data) ----------------------------------------------------------

ACTIVE = "active"
NEXT = "next"


def _published(now: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(col(SigningKey.expires_at).is_(None), col(SigningKey.expires_at) > now)


async def get_signing_key_in_role(session: AsyncSession, *, role: str) -> SigningKey | None:
    """The active or the next key (the unique constraint allows one of each)."""
    # populate_existing: after a concurrent rotation the row changed under this session.
    query = (
        select(SigningKey).where(SigningKey.role == role).execution_options(populate_existing=True)
    )
    return (await session.exec(query)).first()


async def get_active_signing_key(session: AsyncSession) -> SigningKey | None:
    """The key that signs."""
    return await get_signing_key_in_role(session, role=ACTIVE)


async def get_published_signing_keys(
    session: AsyncSession, *, now: datetime
) -> Sequence[SigningKey]:
    query = (
        select(SigningKey)
        .where(_published(now))
        .order_by(col(SigningKey.created_at).desc(), col(SigningKey.kid).desc())
    )
    return (await session.exec(query)).all()


async def add_signing_key_unless_role_taken(session: AsyncSession, key: SigningKey) -> bool:
    """Insert ``key`` in its role; False when another replica filled that role first.

    ``ON CONFLICT DO NOTHING`` rather than a caught IntegrityError: the conflict neither
    aborts the transaction (PostgreSQL) nor needs a savepoint.
    """
    values = key.model_dump()
    dialect = session.get_bind().dialect.name
    statement = conflict_insert(dialect, SigningKey).values(**values).on_conflict_do_nothing()
    result = await session.exec(statement)
    return bool(result.rowcount)


async def retire_signing_key(
    session: AsyncSession, *, kid: str, now: datetime, expires_at: datetime
) -> bool:
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
    result = await session.exec(statement)
    return bool(result.rowcount)


async def promote_signing_key(session: AsyncSession, *, kid: str, now: datetime) -> bool:
    """The next key ``kid`` signs from ``now``; False when it was no longer the next key."""
    statement = (
        sa.update(SigningKey)
        .where(col(SigningKey.kid) == kid, col(SigningKey.role) == NEXT)
        .values(role=ACTIVE, activates_at=now)
        .execution_options(synchronize_session=False)
    )
    result = await session.exec(statement)
    return bool(result.rowcount)


async def delete_expired_signing_keys(session: AsyncSession, *, now: datetime) -> int:
    """Private keys that can no longer verify a live token are destroyed, not archived."""
    statement = sa.delete(SigningKey).where(
        col(SigningKey.role).is_(None),
        col(SigningKey.expires_at).is_not(None),
        col(SigningKey.expires_at) <= now,
    )
    result = await session.exec(statement)
    return int(result.rowcount or 0)


# --- refresh-token families and tokens -----------------------------------------------------


async def add_family(session: AsyncSession, family: RefreshTokenFamily) -> RefreshTokenFamily:
    session.add(family)
    await session.flush()
    return family


async def get_family(
    session: AsyncSession, *, user_id: uuid.UUID, family_id: uuid.UUID
) -> RefreshTokenFamily | None:
    query = select(RefreshTokenFamily).where(
        RefreshTokenFamily.id == family_id, RefreshTokenFamily.user_id == user_id
    )
    return (await session.exec(query)).first()


async def get_live_families(
    session: AsyncSession, *, user_id: uuid.UUID, now: datetime
) -> Sequence[RefreshTokenFamily]:
    query = select(RefreshTokenFamily).where(
        RefreshTokenFamily.user_id == user_id,
        col(RefreshTokenFamily.revoked_at).is_(None),
        RefreshTokenFamily.expires_at > now,
    )
    return (await session.exec(query)).all()


async def revoke_family(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    family_id: uuid.UUID,
    now: datetime,
    reason: str,
) -> bool:
    """Revoke once: False when the family was already revoked (so its event is not repeated)."""
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
    result = await session.exec(statement)
    return bool(result.rowcount)


async def add_refresh_token(session: AsyncSession, token: RefreshToken) -> RefreshToken:
    session.add(token)
    await session.flush()
    return token


async def find_refresh_token(
    session: AsyncSession, *, token_hash: str
) -> tuple[RefreshToken, RefreshTokenFamily] | None:
    # The presented secret is the only handle a refresh request has; the owner comes from it.
    query = (
        select(RefreshToken, RefreshTokenFamily)
        .join(RefreshTokenFamily, col(RefreshTokenFamily.id) == col(RefreshToken.family_id))
        .where(RefreshToken.token_hash == token_hash)
    )
    row = (await session.exec(query)).first()
    return None if row is None else (row[0], row[1])


async def spend_refresh_token(
    session: AsyncSession, *, user_id: uuid.UUID, token_id: uuid.UUID, now: datetime
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
    result = await session.exec(statement)
    return bool(result.rowcount)


# --- throttling (keyed by digests, not by user) ---------------------------------------------


def _lock_id(key: str) -> int:
    """A signed 64-bit advisory-lock id for a throttling key."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)


async def lock_keys(session: AsyncSession, *, keys: Sequence[str]) -> None:
    """On PostgreSQL, a transaction-level advisory lock per key, always in ascending order
    (so two transactions never wait on each other); SQLite serialises writers itself."""
    if session.get_bind().dialect.name == "postgresql":
        for lock_id in sorted({_lock_id(key) for key in keys}):
            await session.exec(select(sa.func.pg_advisory_xact_lock(lock_id)))


async def lock_throttle_keys(
    session: AsyncSession, *, keys: Sequence[str], before: datetime
) -> None:
    """Serialise attempts counted under ``keys`` until the transaction ends.

    PostgreSQL takes a transaction-level advisory lock per key (in one order, so two
    attempts never wait on each other). SQLite has one writer at a time: the first
    statement is a write, which takes the database's write lock before anything is counted.
    Either way the write forgets this key's entries that have left every window.
    """
    await lock_keys(session, keys=keys)
    await session.exec(
        sa.delete(ThrottleEntry).where(
            col(ThrottleEntry.key).in_(list(keys)), col(ThrottleEntry.created_at) <= before
        )
    )


async def throttle_entries_since(
    session: AsyncSession, *, keys: Sequence[str], since: datetime
) -> dict[str, list[datetime]]:
    """Each key's entry times after ``since``, oldest first."""
    query = (
        select(ThrottleEntry.key, ThrottleEntry.created_at)
        .where(col(ThrottleEntry.key).in_(list(keys)), ThrottleEntry.created_at > since)
        .order_by(col(ThrottleEntry.created_at))
    )
    found: dict[str, list[datetime]] = {}
    for key, created_at in (await session.exec(query)).all():
        found.setdefault(key, []).append(created_at)
    return found


async def add_throttle_entries(
    session: AsyncSession, *, keys: Sequence[str], now: datetime
) -> list[uuid.UUID]:
    entries = [ThrottleEntry(key=key, created_at=now) for key in keys]
    session.add_all(entries)
    await session.flush()
    return [entry.id for entry in entries]


async def delete_throttle_entries(session: AsyncSession, *, ids: Sequence[uuid.UUID]) -> None:
    if ids:
        await session.exec(sa.delete(ThrottleEntry).where(col(ThrottleEntry.id).in_(list(ids))))


async def clear_throttle_keys(session: AsyncSession, *, patterns: Sequence[str]) -> int:
    """Delete the entries whose key matches any LIKE pattern; how many went."""
    if not patterns:
        return 0
    result = await session.exec(
        sa.delete(ThrottleEntry).where(
            sa.or_(*(col(ThrottleEntry.key).like(pattern) for pattern in patterns))
        )
    )
    return int(result.rowcount or 0)


async def throttle_counts(
    session: AsyncSession, *, patterns: Sequence[str], since: datetime
) -> list[tuple[str, int, datetime]]:
    """(key, entries, latest) of every key matching a LIKE pattern (all keys when none)."""
    query = select(ThrottleEntry.key, sa.func.count(), sa.func.max(ThrottleEntry.created_at)).where(
        ThrottleEntry.created_at > since
    )
    if patterns:
        query = query.where(sa.or_(*(col(ThrottleEntry.key).like(pattern) for pattern in patterns)))
    query = query.group_by(col(ThrottleEntry.key)).order_by(col(ThrottleEntry.key))
    return [(key, int(count), latest) for key, count, latest in (await session.exec(query)).all()]


async def delete_throttle_entries_before(session: AsyncSession, *, before: datetime) -> int:
    result = await session.exec(
        sa.delete(ThrottleEntry).where(col(ThrottleEntry.created_at) <= before)
    )
    return int(result.rowcount or 0)


async def is_usual_address(
    session: AsyncSession, *, account_key: str, address_key: str, since: datetime
) -> bool:
    query = select(UsualAddress.account_key).where(
        UsualAddress.account_key == account_key,
        UsualAddress.address_key == address_key,
        UsualAddress.last_signed_in_at > since,
    )
    return (await session.exec(query)).first() is not None


async def remember_usual_address(
    session: AsyncSession, *, account_key: str, address_key: str, now: datetime, keep: int
) -> None:
    """Record a successful sign-in from the address; only the ``keep`` latest stay."""
    row = await session.get(UsualAddress, (account_key, address_key))
    if row is None:
        session.add(
            UsualAddress(account_key=account_key, address_key=address_key, last_signed_in_at=now)
        )
    else:
        row.last_signed_in_at = now
        session.add(row)
    await session.flush()
    newest = (
        select(UsualAddress.address_key)
        .where(UsualAddress.account_key == account_key)
        .order_by(col(UsualAddress.last_signed_in_at).desc(), col(UsualAddress.address_key))
        .limit(keep)
    )
    await session.exec(
        sa.delete(UsualAddress).where(
            col(UsualAddress.account_key) == account_key,
            col(UsualAddress.address_key).not_in(newest.scalar_subquery()),
        )
    )


async def forget_usual_addresses(
    session: AsyncSession, *, account_key: str | None = None, before: datetime | None = None
) -> int:
    query = sa.delete(UsualAddress)
    if account_key is not None:
        query = query.where(col(UsualAddress.account_key) == account_key)
    if before is not None:
        query = query.where(col(UsualAddress.last_signed_in_at) <= before)
    result = await session.exec(query)
    return int(result.rowcount or 0)
