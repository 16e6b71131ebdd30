"""Upkeep on every replica, at start and then periodically: signing keys present and
rotated by age, expired keys destroyed. Old throttle entries, usual addresses, refresh
tokens and outbox rows are the prune job's (``momentum_auth.pruning``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from momentum_auth.context import AuthContext
from momentum_auth.models import SigningKey
from momentum_auth.signing_keys.rotation import maintain_signing_keys
from momentum_shared.db import UnitOfWork
from momentum_shared.events import utcnow
from momentum_shared.lifespan import PeriodicJob


async def maintain(session: AsyncSession, ctx: AuthContext, *, now: datetime) -> SigningKey:
    """One round of upkeep; the key that signs now."""
    return await maintain_signing_keys(session, ctx, now=now)


async def maintain_once(
    session_factory: async_sessionmaker[AsyncSession], context: AuthContext
) -> None:
    """One round in its own transaction (a failure raises: the periodic job logs it)."""
    async with UnitOfWork(session_factory) as uow:
        await maintain(uow.session, context, now=utcnow())


def upkeep_job(
    session_factory: async_sessionmaker[AsyncSession], context: AuthContext
) -> PeriodicJob:
    """The upkeep as a periodic job on every replica."""
    interval = context.settings.key_maintenance_interval_seconds
    return PeriodicJob(
        "signing-key-upkeep",
        lambda: maintain_once(session_factory, context),
        interval_seconds=interval,
        # While the database is unusable /readyz says so; retry soon, not at the interval.
        retry_seconds=min(1.0, interval),
    )
