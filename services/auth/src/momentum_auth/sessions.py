"""Sessions: refresh-token families, the tokens each issues, and their revocation."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from momentum_auth import publishing
from momentum_auth.context import AuthContext
from momentum_auth.minting import (
    access_token_expiry,
    hash_refresh_token,
    mint_access_token,
    new_refresh_token,
)
from momentum_auth.models import RefreshToken, RefreshTokenFamily, User
from momentum_auth.repositories.sessions import SessionRepository
from momentum_auth.repositories.users import UserRepository
from momentum_auth.schemas import TokenResponse
from momentum_auth.signing_keys.rotation import ensure_signing_key
from momentum_shared.security import InvalidToken


async def open_session(
    session: AsyncSession,
    ctx: AuthContext,
    *,
    user: User,
    client_id: str,
    scope: str,
    now: datetime,
) -> TokenResponse:
    """A new family for a sign-in, and its first tokens."""
    settings = ctx.settings
    family = await SessionRepository(session).add_family(
        RefreshTokenFamily(
            user_id=user.id,
            client_id=client_id,
            scope=scope,
            created_at=now,
            expires_at=now + timedelta(seconds=settings.refresh_absolute_lifetime_seconds),
            # The expiry of the access token issued just below: the row is written once.
            last_access_expires_at=access_token_expiry(now, settings.access_token_lifetime_seconds),
        )
    )
    return await issue_tokens(session, ctx, user=user, family=family, scope=scope, now=now)


async def issue_tokens(
    session: AsyncSession,
    ctx: AuthContext,
    *,
    user: User,
    family: RefreshTokenFamily,
    scope: str,
    now: datetime,
) -> TokenResponse:
    """A new access token and the family's next refresh token."""
    settings = ctx.settings
    key = await ensure_signing_key(session, ctx, now=now)
    access = mint_access_token(
        private_key=ctx.keys.private_key(key),
        kid=key.kid,
        issuer=settings.issuer,
        audience=settings.token_audience,
        user_id=user.id,
        client_id=family.client_id,
        scope=scope,
        session_id=family.id,
        timezone=user.timezone,
        now=now,
        lifetime=settings.access_token_lifetime_seconds,
    )
    refresh = new_refresh_token()
    idle_expiry = now + timedelta(seconds=settings.refresh_idle_lifetime_seconds)
    await SessionRepository(session).add_refresh_token(
        RefreshToken(
            family_id=family.id,
            token_hash=hash_refresh_token(refresh),
            created_at=now,
            expires_at=min(idle_expiry, family.expires_at),
        ),
    )
    family.last_access_expires_at = max(family.last_access_expires_at, access.expires_at)
    session.add(family)
    return TokenResponse(
        access_token=access.token,
        expires_in=access.lifetime,
        refresh_token=refresh,
        scope=scope,
    )


async def revoke_family(
    session: AsyncSession,
    user: User,
    family: RefreshTokenFamily,
    *,
    now: datetime,
    reason: str,
) -> bool:
    """Revoke a family once and announce it (the gateway refuses its access tokens)."""
    revoked = await SessionRepository(session).revoke_family(
        user_id=user.id, family_id=family.id, now=now, reason=reason
    )
    if revoked:
        family.revoked_at = now
        family.revoked_reason = reason
        publishing.session_revoked(session, user, family, now=now)
    return revoked


async def revoke_other_sessions(
    session: AsyncSession, user: User, *, keep: uuid.UUID | None, now: datetime, reason: str
) -> None:
    """Revoke every live family of ``user`` but ``keep``."""
    for family in await SessionRepository(session).get_live_families(user_id=user.id, now=now):
        if family.id != keep:
            await revoke_family(session, user, family, now=now, reason=reason)


async def revoke_token(
    session: AsyncSession, ctx: AuthContext, *, token: str, now: datetime
) -> None:
    """RFC 7009: revoke the family of a refresh token (or of an access token's ``sid``)."""
    sessions = SessionRepository(session)
    users = UserRepository(session)
    found = await sessions.find_refresh_token(token_hash=hash_refresh_token(token))
    if found is not None:
        _, family = found
        user = await users.get(family.user_id)
        if user is not None:
            await revoke_family(session, user, family, now=now, reason="revoked")
        return
    if ctx.verifier is None or token.count(".") != 2:
        return
    try:
        claims = await ctx.verifier.verify(token)
        session_id = uuid.UUID(claims.sid or "")
    except (InvalidToken, ValueError):
        return  # RFC 7009 §2.2: an invalid token is not an error
    user = await users.get(claims.user_id)
    if user is None:
        return
    owned = await sessions.get_family(user_id=user.id, family_id=session_id)
    if owned is not None:
        await revoke_family(session, user, owned, now=now, reason="revoked")
