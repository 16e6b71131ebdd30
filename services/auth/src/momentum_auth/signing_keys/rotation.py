"""Signing-key rules: the active and next keys, rotation by age, retirement, publication."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from momentum_auth.context import AuthContext
from momentum_auth.models import SigningKey
from momentum_auth.schemas import JsonWebKeySet
from momentum_auth.settings import AuthSettings
from momentum_auth.signing_keys.crypto import ALGORITHM, PrivateKeys, new_signing_key, public_jwk
from momentum_auth.signing_keys.repository import ACTIVE, NEXT, SigningKeyRepository
from momentum_shared.metrics import REGISTRY

logger = logging.getLogger("momentum.auth")

KEY_ROTATIONS = Counter(
    "momentum_auth_signing_key_rotations_total",
    "New signing keys made active (first key, automatic, admin route or operator command)",
    registry=REGISTRY,
)


def _published_after_retirement(settings: AuthSettings) -> timedelta:
    """How long a key stays in the JWKS once it stops signing: its last token's lifetime."""
    return timedelta(seconds=settings.access_token_lifetime_seconds + settings.token_leeway_seconds)


async def _key_in_role(
    session: AsyncSession, ctx: AuthContext, *, role: str, now: datetime
) -> SigningKey:
    """The key in ``role``, created when there is none (first start, or a lost next key)."""
    keys = SigningKeyRepository(session)
    key = await keys.get_in_role(role=role)
    if key is not None:
        return key
    key = await new_signing_key(ctx.keys, ctx.settings.signing_key_bits)
    key.role = role
    key.created_at = now
    key.activates_at = now if role == ACTIVE else None
    if await keys.add_unless_role_taken(key):
        if role == ACTIVE:
            KEY_ROTATIONS.inc()
        logger.info("signing key created", extra={"kid": key.kid, "role": role})
        return key
    # Another replica created one at the same moment: use its key, as every replica will.
    theirs = await keys.get_in_role(role=role)
    if theirs is None:  # pragma: no cover - the conflict was on this very role
        raise RuntimeError(f"no {role} signing key after a conflict on that role")
    return theirs


async def ensure_signing_keys(
    session: AsyncSession, ctx: AuthContext, *, now: datetime
) -> tuple[SigningKey, SigningKey]:
    """The active key and the pre-published next key, each created if missing."""
    active = await _key_in_role(session, ctx, role=ACTIVE, now=now)
    upcoming = await _key_in_role(session, ctx, role=NEXT, now=now)
    return active, upcoming


async def ensure_signing_key(
    session: AsyncSession, ctx: AuthContext, *, now: datetime
) -> SigningKey:
    """The active key (one query); the keys are created when there are none yet."""
    active = await SigningKeyRepository(session).get_active()
    if active is None:
        active, _ = await ensure_signing_keys(session, ctx, now=now)
    return active


def _rotation_due(
    settings: AuthSettings, active: SigningKey, upcoming: SigningKey, *, now: datetime
) -> bool:
    """The active key has reached its maximum age, and its successor is known to verifiers."""
    started = active.activates_at or active.created_at
    max_age = timedelta(seconds=settings.signing_key_max_age_seconds)
    # A next key created moments ago (it was lost, or the schema predates next keys) waits
    # until every verifier has refreshed its cached JWKS since it appeared.
    published = timedelta(seconds=settings.jwks_max_age_seconds)
    return now - started >= max_age and now - upcoming.created_at >= published


async def rotate_signing_key(
    session: AsyncSession, ctx: AuthContext, *, now: datetime, only_when_due: bool = False
) -> SigningKey:
    """Promote the pre-published next key to active and publish a fresh next key.

    The promoted key has been in the JWKS since the previous rotation, so verifiers that
    cached the JWKS know it before its first token. The retired key stays published until
    every token it signed has expired. Returns the key that signs from now on.
    """
    settings = ctx.settings
    keys = SigningKeyRepository(session)
    active, upcoming = await ensure_signing_keys(session, ctx, now=now)
    if only_when_due and not _rotation_due(settings, active, upcoming, now=now):
        return active
    expires_at = now + _published_after_retirement(settings)
    if not await keys.retire(kid=active.kid, now=now, expires_at=expires_at):
        # A rotation on another replica retired this key between our read and our write
        # (our UPDATE waited for its commit). It promoted the same next key: that is the
        # rotation asked for, and promoting the key it has just created would not be.
        current = await keys.get_active()
        if current is None:  # pragma: no cover - a rotation always leaves an active key
            raise RuntimeError("no active signing key after a concurrent rotation")
        logger.info("signing key rotated concurrently elsewhere", extra={"kid": current.kid})
        return current
    # Holding the active key's row, no other rotation can get here: the next key is ours.
    if not await keys.promote(kid=upcoming.kid, now=now):
        raise RuntimeError("the next signing key changed during a rotation")
    successor = await _key_in_role(session, ctx, role=NEXT, now=now)
    promoted = await keys.get_active()
    if promoted is None or promoted.kid != upcoming.kid:  # pragma: no cover
        raise RuntimeError("the promoted signing key is not the active one")
    KEY_ROTATIONS.inc()
    logger.info(
        "signing key rotated",
        extra={"kid": promoted.kid, "retired_kid": active.kid, "next_kid": successor.kid},
    )
    return promoted


async def maintain_signing_keys(
    session: AsyncSession, ctx: AuthContext, *, now: datetime
) -> SigningKey:
    """Keys present, rotated by age, expired ones destroyed; the key that signs now."""
    key = await rotate_signing_key(session, ctx, now=now, only_when_due=True)
    deleted = await SigningKeyRepository(session).delete_expired(now=now)
    if deleted:
        logger.info("expired signing keys removed", extra={"keys": deleted})
    return key


async def published_jwks(session: AsyncSession, *, now: datetime) -> JsonWebKeySet:
    rows = await SigningKeyRepository(session).get_published(now=now)
    return JsonWebKeySet(keys=[public_jwk(row) for row in rows if row.algorithm == ALGORITHM])


async def check_signing_key(
    session_factory: async_sessionmaker[AsyncSession], keys: PrivateKeys
) -> None:
    """Readiness: an active key exists and decrypts with the configured key-encryption key."""
    async with session_factory() as session:
        key = await SigningKeyRepository(session).get_active()
    if key is None:
        raise RuntimeError("no signing key yet")
    keys.private_key(key)  # raises when the key-encryption key is wrong
