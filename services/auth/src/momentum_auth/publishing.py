"""Publishing auth's events (docs/spec/events.md): to the outbox, in the caller's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlmodel.ext.asyncio.session import AsyncSession

from momentum_auth.models import OutboxEvent, RefreshTokenFamily, User
from momentum_shared.events import (
    AUTH_STREAM,
    CloudEvent,
    EventData,
    SessionRevoked,
    UserLoggedIn,
    UserRegistered,
    UserUpdated,
)
from momentum_shared.outbox import enqueue

SOURCE = "/momentum/auth"
# The streams auth publishes to (docs/spec/events.md §1): what its relays declare.
STREAMS = (AUTH_STREAM,)


def _emit(session: AsyncSession, user: User, data: EventData, *, time: datetime) -> None:
    # usertz: the zone the user is in at the moment of the event, for analytics' local day.
    event = CloudEvent.of(
        data, source=SOURCE, subject=str(user.id), usertz=user.timezone, time=time
    )
    enqueue(session, OutboxEvent, event)


def user_registered(session: AsyncSession, user: User, *, now: datetime) -> None:
    _emit(session, user, UserRegistered(user_id=user.id, timezone=user.timezone), time=now)


def user_updated(session: AsyncSession, user: User, *, now: datetime) -> None:
    _emit(session, user, UserUpdated(user_id=user.id, timezone=user.timezone), time=now)


def user_logged_in(
    session: AsyncSession, user: User, *, method: Literal["password", "refresh"], now: datetime
) -> None:
    _emit(session, user, UserLoggedIn(user_id=user.id, method=method), time=now)


def session_revoked(
    session: AsyncSession, user: User, family: RefreshTokenFamily, *, now: datetime
) -> None:
    data = SessionRevoked(
        user_id=user.id, session_id=family.id, expires_at=family.last_access_expires_at
    )
    _emit(session, user, data, time=now)
