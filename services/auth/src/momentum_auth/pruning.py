"""What auth prunes, and when a row is old enough to go (docs/spec/auth.md §7).

* Throttle entries older than the longest throttle window, and usual addresses unused for
  their lifetime: they no longer count for anything.
* Refresh tokens expired for longer than ``refresh_token_retention_seconds``. A spent token
  is kept while it has not expired, so presenting it again still revokes its family
  (reuse detection holds for the token's whole lifetime); afterwards it would only be
  refused as expired, which an unknown token is too.
* The tokens of families revoked that long ago: a revoked family refuses all its tokens,
  and an unknown token gets the same answer.
* Families revoked or expired that long ago, once their last access token has expired
  (auth refuses an access token whose family is gone or revoked alike) and no token is
  left. The revocation event carries what the gateway needs; it reads no family.
* Published outbox rows past ``outbox_retention_seconds``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from momentum_auth.attempts import longest_window_seconds
from momentum_auth.models import (
    OUTBOX,
    AuthBase,
    RefreshToken,
    RefreshTokenFamily,
    ThrottleEntry,
    UsualAddress,
)
from momentum_auth.settings import AuthSettings
from momentum_shared.outbox import published_rows
from momentum_shared.pruning import Pruner, PruneTarget


def _table(model: type[AuthBase]) -> sa.Table:
    return AuthBase.metadata.tables[str(model.__tablename__)]


_THROTTLE = _table(ThrottleEntry)
_USUAL = _table(UsualAddress)
_TOKENS = _table(RefreshToken)
_FAMILIES = _table(RefreshTokenFamily)


def prune_targets(settings: AuthSettings) -> list[PruneTarget]:
    """Auth's targets, in an order that respects the foreign keys (tokens before families)."""
    window = timedelta(seconds=longest_window_seconds(settings))
    usual = timedelta(seconds=settings.throttle_usual_address_lifetime_seconds)
    retention = timedelta(seconds=settings.refresh_token_retention_seconds)

    def revoked_families(now: datetime) -> sa.Select[tuple[object]]:
        return sa.select(_FAMILIES.c.id).where(_FAMILIES.c.revoked_at < now - retention)

    def spent_families(now: datetime) -> sa.ColumnElement[bool]:
        cutoff = now - retention
        return sa.and_(
            sa.or_(_FAMILIES.c.revoked_at < cutoff, _FAMILIES.c.expires_at < cutoff),
            _FAMILIES.c.last_access_expires_at < cutoff,
            ~sa.exists().where(_TOKENS.c.family_id == _FAMILIES.c.id),
        )

    return [
        PruneTarget(_THROTTLE, lambda now: _THROTTLE.c.created_at <= now - window),
        PruneTarget(_USUAL, lambda now: _USUAL.c.last_signed_in_at <= now - usual),
        PruneTarget(_TOKENS, lambda now: _TOKENS.c.expires_at < now - retention),
        PruneTarget(_TOKENS, lambda now: _TOKENS.c.family_id.in_(revoked_families(now))),
        PruneTarget(_FAMILIES, spent_families),
        published_rows(OUTBOX, "auth", settings.outbox_retention_seconds),
    ]


def pruner(session_factory: async_sessionmaker[AsyncSession], settings: AuthSettings) -> Pruner:
    """The prune job of auth (``momentum_shared.pruning``)."""
    return Pruner(
        session_factory,
        prune_targets(settings),
        service="auth",
        batch_size=settings.prune_batch_size,
        time_budget_seconds=settings.prune_time_budget_seconds,
    )
