"""Upkeep on every replica, at start and then periodically: signing keys present and
rotated by age, expired keys destroyed, old throttle entries and usual addresses forgotten."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from momentum_auth import attempts
from momentum_auth.context import AuthContext
from momentum_auth.models import SigningKey
from momentum_auth.signing_keys.rotation import maintain_signing_keys
from momentum_shared.db import UnitOfWork
from momentum_shared.events import utcnow

logger = logging.getLogger("momentum.auth")


async def maintain(session: AsyncSession, ctx: AuthContext, *, now: datetime) -> SigningKey:
    """One round of upkeep; the key that signs now."""
    key = await maintain_signing_keys(session, ctx, now=now)
    await attempts.forget_expired(session, ctx.settings, now=now)
    return key


async def maintain_once(
    session_factory: async_sessionmaker[AsyncSession], context: AuthContext
) -> bool:
    """One round in its own transaction; False (logged) when it failed."""
    try:
        async with UnitOfWork(session_factory) as uow:
            await maintain(uow.session, context, now=utcnow())
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        logger.warning("signing-key upkeep failed", extra={"error": type(exc).__name__})
        return False
    return True


async def maintain_keys(
    session_factory: async_sessionmaker[AsyncSession], context: AuthContext, *, ok: bool
) -> None:
    """Keep rotating and pruning keys on every replica, after the first upkeep at start."""
    interval = context.settings.key_maintenance_interval_seconds
    while True:
        # While the database is unusable /readyz says so; retry soon rather than at the interval.
        await asyncio.sleep(interval if ok else min(1.0, interval))
        ok = await maintain_once(session_factory, context)
