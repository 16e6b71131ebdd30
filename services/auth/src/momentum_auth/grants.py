"""The token endpoint's grants (``password`` and ``refresh_token``) and their metrics.

Every refusal is raised. Two must keep what the request wrote before them, and go through
``errors.refuse_keeping``: a scope refused after the password matched (the match's upkeep:
the pair's failures forgotten, the address remembered, a rehashed password) and a replayed
refresh token (its family's revocation). A wrong password needs nothing kept: its attempt
was counted and committed by the reservation before the check.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import NoReturn

from prometheus_client import Counter
from sqlmodel.ext.asyncio.session import AsyncSession

from momentum_auth import attempts, errors, publishing
from momentum_auth.context import AuthContext
from momentum_auth.emails import normalize_email
from momentum_auth.minting import hash_refresh_token
from momentum_auth.models import RefreshTokenFamily, User
from momentum_auth.repositories.sessions import SessionRepository
from momentum_auth.repositories.users import UserRepository
from momentum_auth.schemas import TokenResponse
from momentum_auth.scopes import allowed_scopes, grant_scope, parse_scope
from momentum_auth.sessions import issue_tokens, open_session, revoke_family
from momentum_shared.errors import ProblemError
from momentum_shared.metrics import REGISTRY

logger = logging.getLogger("momentum.auth")

GRANT_TYPES = ("password", "refresh_token")
MAX_PASSWORD_INPUT = 1024
INVALID_REFRESH = "the refresh token is invalid, expired or revoked"

TOKEN_REQUESTS = Counter(
    "momentum_auth_token_requests_total",
    "Token-endpoint requests by grant type and outcome (issued, or the OAuth error code)",
    ["grant_type", "outcome"],
    registry=REGISTRY,
)
REFRESH_REPLAYS = Counter(
    "momentum_auth_refresh_token_replays_total",
    "Spent refresh tokens presented again (each revokes its family)",
    registry=REGISTRY,
)


@contextmanager
def _counted(grant_type: str) -> Iterator[None]:
    """Count the grant's outcome: issued, throttled, or the OAuth error code."""
    try:
        yield
    except ProblemError as problem:
        outcome = "throttled" if problem.status == 429 else str(problem.extra.get("error"))
        TOKEN_REQUESTS.labels(grant_type, outcome).inc()
        raise
    TOKEN_REQUESTS.labels(grant_type, "issued").inc()


async def password_grant(
    session: AsyncSession,
    ctx: AuthContext,
    *,
    username: str,
    password: str,
    scope: str | None,
    client_id: str,
    address: str,
    now: datetime,
) -> TokenResponse:
    with _counted("password"):
        return await _password_grant(
            session,
            ctx,
            username=username,
            password=password,
            scope=scope,
            client_id=client_id,
            address=address,
            now=now,
        )


async def _password_grant(
    session: AsyncSession,
    ctx: AuthContext,
    *,
    username: str,
    password: str,
    scope: str | None,
    client_id: str,
    address: str,
    now: datetime,
) -> TokenResponse:
    requested = parse_scope(scope)
    settings = ctx.settings
    account = attempts.account_name(username)
    budget = attempts.budget_rules(
        settings,
        "token",
        address=address,
        per_address=settings.throttle_token_requests_per_address,
        account=account,
        per_user=settings.throttle_token_requests_per_user,
    )
    # Reserved before any user lookup: a locked username answers the same whether it exists.
    reservation = await attempts.reserve_password_check(
        session, settings, account=account, address=address, budget=budget, now=now
    )
    if isinstance(reservation, int):
        logger.info("sign-in throttled", extra={"retry_after": reservation})
        raise errors.throttled(reservation)
    email_normalized = normalize_email(username)
    user = None
    if email_normalized is not None:
        user = await UserRepository(session).get_by_email(email_normalized)
    try:
        if user is None:
            await ctx.hasher.verify_dummy(password)
            matches, new_hash = False, None
        else:
            matches, new_hash = await ctx.hasher.verify(password, user.password_hash)
    except Exception:
        await attempts.release_after_error(session, reservation)
        raise
    if user is None or not matches:
        raise errors.wrong_credentials()
    await attempts.password_matched(session, settings, reservation, now=now)
    if new_hash is not None:
        # The stored hash used older parameters: upgrade it while the password is at hand.
        user.password_hash = new_hash
        session.add(user)
    try:
        granted = grant_scope(requested, allowed_scopes(user))
    except ProblemError as refused:
        await errors.refuse_keeping(session, refused)
    response = await open_session(
        session, ctx, user=user, client_id=client_id, scope=granted, now=now
    )
    publishing.user_logged_in(session, user, method="password", now=now)
    return response


async def refresh_grant(
    session: AsyncSession,
    ctx: AuthContext,
    *,
    refresh_token: str,
    scope: str | None,
    now: datetime,
) -> TokenResponse:
    with _counted("refresh_token"):
        return await _refresh_grant(session, ctx, refresh_token=refresh_token, scope=scope, now=now)


async def _refresh_grant(
    session: AsyncSession,
    ctx: AuthContext,
    *,
    refresh_token: str,
    scope: str | None,
    now: datetime,
) -> TokenResponse:
    requested = parse_scope(scope)
    sessions = SessionRepository(session)
    found = await sessions.find_refresh_token(token_hash=hash_refresh_token(refresh_token))
    if found is None:
        raise errors.invalid_grant(INVALID_REFRESH)
    token, family = found
    if family.revoked_at is not None:
        raise errors.invalid_grant(INVALID_REFRESH)
    user = await UserRepository(session).get(family.user_id)
    if user is None:  # pragma: no cover - users are never deleted
        raise errors.invalid_grant(INVALID_REFRESH)
    if token.used_at is not None:
        await _replayed(session, user, family, now=now)
    if token.expires_at <= now or family.expires_at <= now:
        raise errors.invalid_grant(INVALID_REFRESH)
    family_scopes = [name for name in family.scope.split() if name in allowed_scopes(user)]
    granted = grant_scope(requested, family_scopes)
    if not await sessions.spend_refresh_token(user_id=user.id, token_id=token.id, now=now):
        # Another request spent it between our read and our write: a replay all the same.
        await _replayed(session, user, family, now=now)
    response = await issue_tokens(session, ctx, user=user, family=family, scope=granted, now=now)
    publishing.user_logged_in(session, user, method="refresh", now=now)
    return response


async def _replayed(
    session: AsyncSession, user: User, family: RefreshTokenFamily, *, now: datetime
) -> NoReturn:
    """A spent refresh token came back: someone holds a copy. The whole family goes."""
    logger.warning(
        "spent refresh token presented again; revoking its family",
        extra={"user_id": str(user.id), "session_id": str(family.id)},
    )
    await revoke_family(session, user, family, now=now, reason="replay")
    REFRESH_REPLAYS.inc()
    await errors.refuse_keeping(session, errors.invalid_grant(INVALID_REFRESH))
