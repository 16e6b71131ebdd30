"""Accounts: registration, the operator's admins, the profile, and password changes."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from momentum_auth import attempts, errors, publishing
from momentum_auth.context import AuthContext
from momentum_auth.emails import EMAIL_MAX_LENGTH, normalize_email
from momentum_auth.models import User
from momentum_auth.repositories.users import UserRepository
from momentum_auth.schemas import PasswordChange, UserCreate, UserUpdate
from momentum_auth.sessions import revoke_other_sessions
from momentum_shared.errors import Conflict, TooManyRequests, UnprocessableEntity


async def _create_user(
    session: AsyncSession,
    ctx: AuthContext,
    data: UserCreate,
    *,
    is_admin: bool,
    now: datetime,
) -> User:
    email_normalized = normalize_email(data.email)
    if email_normalized is None:  # pragma: no cover - EmailStr has validated it already
        raise UnprocessableEntity("the email address is not valid")
    if len(email_normalized) > EMAIL_MAX_LENGTH:
        # Case folding can lengthen an address threefold (U+0390 folds to three characters).
        raise UnprocessableEntity(
            "the request did not validate",
            extra={
                "errors": [
                    {
                        "loc": ["body", "email"],
                        "msg": "the email address is too long once its case is folded",
                        "type": "string_too_long",
                    }
                ]
            },
        )
    users = UserRepository(session)
    # Hashed first: a taken email costs the same argon2 work as a new one, so the time of
    # the answer does not tell which emails have accounts.
    password_hash = await ctx.hasher.hash(data.password)
    if await users.get_by_email(email_normalized):
        raise Conflict("a user with this email exists")
    user = User(
        email=data.email,
        email_normalized=email_normalized,
        display_name=data.display_name,
        timezone=data.timezone,
        password_hash=password_hash,
        is_admin=is_admin,
        created_at=now,
        updated_at=now,
    )
    try:
        await users.add(user)
    except IntegrityError:
        # Two registrations raced past the check above; the unique index decided.
        raise Conflict("a user with this email exists") from None
    publishing.user_registered(session, user, now=now)
    return user


async def register_user(
    session: AsyncSession, ctx: AuthContext, data: UserCreate, *, address: str, now: datetime
) -> User:
    """Create a user, within the address's registration budget (429 beyond it)."""
    rules = attempts.budget_rules(
        ctx.settings,
        "register",
        address=address,
        per_address=ctx.settings.throttle_registrations_per_address,
    )
    reserved = await attempts.reserve(session, rules, now=now)
    if isinstance(reserved, int):
        raise TooManyRequests(
            f"too many registrations; try again in {reserved} seconds", retry_after=reserved
        )
    return await _create_user(session, ctx, data, is_admin=False, now=now)


async def create_admin(
    session: AsyncSession, ctx: AuthContext, data: UserCreate, *, now: datetime
) -> User:
    return await _create_user(session, ctx, data, is_admin=True, now=now)


async def update_user(
    session: AsyncSession, user: User, data: UserUpdate, *, now: datetime
) -> User:
    changed = False
    if "display_name" in data.model_fields_set and data.display_name != user.display_name:
        user.display_name = data.display_name
        changed = True
    if data.timezone is not None and data.timezone != user.timezone:
        user.timezone = data.timezone
        changed = True
    if changed:
        user.updated_at = now
        session.add(user)
        publishing.user_updated(session, user, now=now)
    return user


async def change_password(
    session: AsyncSession,
    ctx: AuthContext,
    user: User,
    data: PasswordChange,
    *,
    current_session: uuid.UUID | None,
    address: str,
    now: datetime,
) -> None:
    """Set a new password and revoke every other session.

    A wrong current password is refused (403) and counts as a failed sign-in: its attempt
    was counted and committed by the reservation before the check.
    """
    settings = ctx.settings
    account = user.email_normalized
    budget = attempts.budget_rules(
        settings,
        "password",
        address=address,
        per_address=settings.throttle_password_changes_per_address,
        account=account,
        per_user=settings.throttle_password_changes_per_user,
    )
    reservation = await attempts.reserve_password_check(
        session, settings, account=account, address=address, budget=budget, now=now
    )
    if isinstance(reservation, int):
        raise errors.throttled(reservation)
    try:
        matches, _ = await ctx.hasher.verify(data.current_password, user.password_hash)
    except Exception:
        await attempts.release_after_error(session, reservation)
        raise
    if not matches:
        raise errors.wrong_current_password()
    await attempts.password_matched(session, settings, reservation, now=now)
    user.password_hash = await ctx.hasher.hash(data.new_password)
    user.updated_at = now
    session.add(user)
    await revoke_other_sessions(
        session, user, keep=current_session, now=now, reason="password_changed"
    )
