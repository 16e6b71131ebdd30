"""Business rules of auth: users, sign-in, refresh-token families, throttling, signing keys.

Refusals that must be remembered (a family revoked for a replayed refresh token, a
matched password's upkeep) are *returned* as a ``ProblemError`` rather than raised: raising
rolls the request's unit of work back, and the record with it. The one exception to "the
request owns the transaction" is ``reserve``: a throttled attempt is counted and committed
before the password is checked, so concurrent attempts cannot pass the limits together.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from email_validator import EmailNotValidError, validate_email
from prometheus_client import Counter
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from momentum_auth import errors, publishing, repository, throttle
from momentum_auth.keys import ALGORITHM, PrivateKeys, new_signing_key, public_jwk
from momentum_auth.models import RefreshToken, RefreshTokenFamily, SigningKey, User
from momentum_auth.passwords import PasswordHasher
from momentum_auth.schemas import (
    JsonWebKeySet,
    PasswordChange,
    TokenResponse,
    UserCreate,
    UserUpdate,
)
from momentum_auth.settings import AuthSettings
from momentum_auth.tokens import (
    access_token_expiry,
    hash_refresh_token,
    mint_access_token,
    new_refresh_token,
)
from momentum_shared.errors import Conflict, ProblemError, TooManyRequests, UnprocessableEntity
from momentum_shared.metrics import REGISTRY
from momentum_shared.security import InvalidToken, TokenVerifier

logger = logging.getLogger("momentum.auth")

USER_SCOPES = ("profile", "tasks:read", "tasks:write", "analytics:read")
ADMIN_SCOPE = "admin"
SCOPES = (*USER_SCOPES, ADMIN_SCOPE)
GRANT_TYPES = ("password", "refresh_token")
MAX_PASSWORD_INPUT = 1024
# The width of the users.email and users.email_normalized columns.
EMAIL_MAX_LENGTH = 320

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
KEY_ROTATIONS = Counter(
    "momentum_auth_signing_key_rotations_total",
    "New signing keys made active (first key, automatic, admin route or operator command)",
    registry=REGISTRY,
)


@dataclass
class AuthContext:
    """What the rules need besides the session: settings, the hasher, the key material."""

    settings: AuthSettings
    hasher: PasswordHasher
    keys: PrivateKeys
    verifier: TokenVerifier | None = None


# --- emails and scopes ---------------------------------------------------------------------


def normalize_email(value: str) -> str | None:
    """The form uniqueness and sign-in compare (case-insensitive), or None if not an email."""
    try:
        normalized = validate_email(value.strip(), check_deliverability=False).normalized
    except EmailNotValidError:
        return None
    return normalized.casefold()


def allowed_scopes(user: User) -> tuple[str, ...]:
    return SCOPES if user.is_admin else USER_SCOPES


def parse_scope(raw: str | None) -> list[str] | ProblemError | None:
    """The requested scopes (None when absent), or ``invalid_scope`` for an unknown one."""
    if raw is None or not raw.strip():
        return None
    requested = raw.split()
    unknown = sorted({name for name in requested if name not in SCOPES})
    if unknown:
        return errors.invalid_scope(f"unknown scope: {' '.join(unknown)[:200]}")
    return requested


def grant_scope(requested: list[str] | None, allowed: Sequence[str]) -> str | ProblemError:
    """Every allowed scope when none is asked for, else exactly the asked subset."""
    if requested is None:
        return " ".join(allowed)
    beyond = sorted(set(requested) - set(allowed))
    if beyond:
        return errors.invalid_scope(f"scope not granted to this client: {' '.join(beyond)}")
    return " ".join(name for name in SCOPES if name in requested)


# --- users ---------------------------------------------------------------------------------


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
    # Hashed first: a taken email costs the same argon2 work as a new one, so the time of
    # the answer does not tell which emails have accounts.
    password_hash = await ctx.hasher.hash(data.password)
    if await repository.get_user_by_email(session, email_normalized=email_normalized):
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
        await repository.add_user(session, user)
    except IntegrityError:
        # Two registrations raced past the check above; the unique index decided.
        raise Conflict("a user with this email exists") from None
    publishing.user_registered(session, user, now=now)
    return user


async def register_user(
    session: AsyncSession, ctx: AuthContext, data: UserCreate, *, address: str, now: datetime
) -> User:
    """Create a user, within the address's registration budget (429 beyond it)."""
    rules = _budget_rules(
        ctx.settings,
        "register",
        address=address,
        per_address=ctx.settings.throttle_registrations_per_address,
    )
    reserved = await reserve(session, rules, now=now)
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
) -> ProblemError | None:
    """Set a new password and revoke every other session; a wrong one counts as a failure."""
    settings = ctx.settings
    account = user.email_normalized
    budget = _budget_rules(
        settings,
        "password",
        address=address,
        per_address=settings.throttle_password_changes_per_address,
        account=account,
        per_user=settings.throttle_password_changes_per_user,
    )
    reservation = await reserve_password_check(
        session, settings, account=account, address=address, budget=budget, now=now
    )
    if isinstance(reservation, int):
        return errors.throttled(reservation)
    try:
        matches, _ = await ctx.hasher.verify(data.current_password, user.password_hash)
    except Exception:
        await release_after_error(session, reservation)
        raise
    if not matches:
        return errors.wrong_current_password()
    await password_matched(session, settings, reservation, now=now)
    user.password_hash = await ctx.hasher.hash(data.new_password)
    user.updated_at = now
    session.add(user)
    for family in await repository.get_live_families(session, user_id=user.id, now=now):
        if family.id != current_session:
            await revoke_family(session, user, family, now=now, reason="password_changed")
    return None


# --- throttling ----------------------------------------------------------------------------


def account_name(username: str) -> str:
    """What an account's throttling keys are made from: the normalised email when it is one."""
    return normalize_email(username) or username.strip().casefold()


@dataclass
class Reservation:
    """Entries an attempt holds: its failure entries are released if the password matches,
    all of them (budgets too) if the check could not run."""

    entry_ids: list[uuid.UUID]
    failure_ids: list[uuid.UUID]
    account_key: str
    address_key: str
    pair_key: str


def _budget_rules(
    settings: AuthSettings,
    endpoint: str,
    *,
    address: str,
    per_address: int,
    account: str | None = None,
    per_user: int = 0,
) -> list[throttle.Rule]:
    """Request budgets of ``endpoint``: every request counts, successes included."""
    window = settings.throttle_budget_window_seconds
    keys = [(throttle.address_key(address), per_address)]
    if account is not None:
        keys.append((throttle.account_key(account), per_user))
    return [
        throttle.Rule(throttle.budget_key(endpoint, key), limit, window, failure=False)
        for key, limit in keys
    ]


async def _failure_rules(
    session: AsyncSession, settings: AuthSettings, account: str, address: str, *, now: datetime
) -> list[throttle.Rule]:
    """The failure budgets of a password check; the account's delay only from strangers."""
    window = settings.throttle_window_seconds
    rules = [
        throttle.Rule(
            throttle.pair_key(account, address),
            settings.throttle_max_failures_per_account_address,
            window,
        ),
        throttle.Rule(
            throttle.address_key(address), settings.throttle_max_failures_per_address, window
        ),
    ]
    usual = await repository.is_usual_address(
        session,
        account_key=throttle.account_key(account),
        address_key=throttle.address_key(address),
        since=now - timedelta(seconds=settings.throttle_usual_address_lifetime_seconds),
    )
    if not usual:
        rules.append(
            throttle.Rule(
                throttle.account_key(account),
                settings.throttle_account_free_failures,
                settings.throttle_account_window_seconds,
                progressive=True,
                base_delay_seconds=settings.throttle_account_base_delay_seconds,
                max_delay_seconds=settings.throttle_account_max_delay_seconds,
            )
        )
    return rules


async def reserve(
    session: AsyncSession, rules: Sequence[throttle.Rule], *, now: datetime
) -> list[uuid.UUID] | int:
    """Count an attempt under every rule, or the seconds to wait when one refuses.

    It runs in a transaction of its own, committed before the caller does the expensive
    work (the password check): concurrent attempts are counted one at a time, and each sees
    the ones before it, so no more attempts get through than the limits allow. A refused
    attempt writes nothing. Call it before the request has written anything.
    """
    keys = [rule.key for rule in rules]
    await repository.lock_throttle_keys(
        session,
        keys=keys,
        before=now - timedelta(seconds=throttle.longest_window_seconds(rules)),
    )
    earliest = now - timedelta(seconds=throttle.longest_window_seconds(rules))
    entries = await repository.throttle_entries_since(session, keys=keys, since=earliest)
    wait = throttle.retry_after(rules, entries, now=now)
    if wait is not None:
        await session.rollback()
        return wait
    ids = await repository.add_throttle_entries(session, keys=keys, now=now)
    await session.commit()
    return ids  # in the order of ``rules``


async def reserve_password_check(
    session: AsyncSession,
    settings: AuthSettings,
    *,
    account: str,
    address: str,
    budget: list[throttle.Rule],
    now: datetime,
) -> Reservation | int:
    rules = [*budget, *await _failure_rules(session, settings, account, address, now=now)]
    reserved = await reserve(session, rules, now=now)
    if isinstance(reserved, int):
        return reserved
    return Reservation(
        entry_ids=reserved,
        failure_ids=[entry for entry, rule in zip(reserved, rules, strict=True) if rule.failure],
        account_key=throttle.account_key(account),
        address_key=throttle.address_key(address),
        pair_key=throttle.pair_key(account, address),
    )


async def password_matched(
    session: AsyncSession, settings: AuthSettings, reservation: Reservation, *, now: datetime
) -> None:
    """Release the attempt, forget the pair's failures, remember the address as usual.

    Two right passwords for one account at once must not deadlock on each other's rows:
    the account and pair keys are locked first, in the same order as a reservation's.
    """
    await repository.lock_keys(session, keys=[reservation.pair_key, reservation.account_key])
    await repository.delete_throttle_entries(session, ids=reservation.failure_ids)
    await repository.clear_throttle_keys(session, patterns=[reservation.pair_key])
    await repository.remember_usual_address(
        session,
        account_key=reservation.account_key,
        address_key=reservation.address_key,
        now=now,
        keep=settings.throttle_usual_addresses_per_account,
    )


async def release_after_error(session: AsyncSession, reservation: Reservation) -> None:
    """The check itself failed (the hasher is busy): the attempt counts against nothing,
    so filling the hasher cannot spend someone else's budget."""
    await session.rollback()
    await repository.delete_throttle_entries(session, ids=reservation.entry_ids)
    await session.commit()


async def sign_in_retry_after(
    session: AsyncSession, settings: AuthSettings, *, username: str, address: str, now: datetime
) -> int | None:
    """Seconds until a password check for this username from this address is allowed."""
    rules = await _failure_rules(session, settings, account_name(username), address, now=now)
    earliest = now - timedelta(seconds=throttle.longest_window_seconds(rules))
    entries = await repository.throttle_entries_since(
        session, keys=[rule.key for rule in rules], since=earliest
    )
    return throttle.retry_after(rules, entries, now=now)


def _rule_for_key(settings: AuthSettings, key: str) -> throttle.Rule:
    """The rule a stored key was counted under (read back by the operator commands)."""
    kind, _, rest = key.partition(":")
    window = settings.throttle_window_seconds
    if kind == throttle.PAIR:
        return throttle.Rule(key, settings.throttle_max_failures_per_account_address, window)
    if kind == throttle.ADDRESS:
        return throttle.Rule(key, settings.throttle_max_failures_per_address, window)
    if kind == throttle.ACCOUNT:
        return throttle.Rule(
            key,
            settings.throttle_account_free_failures,
            settings.throttle_account_window_seconds,
            progressive=True,
            base_delay_seconds=settings.throttle_account_base_delay_seconds,
            max_delay_seconds=settings.throttle_account_max_delay_seconds,
        )
    per_user = rest.startswith(throttle.ACCOUNT)
    limits = {
        "token": (
            settings.throttle_token_requests_per_user,
            settings.throttle_token_requests_per_address,
        ),
        "password": (
            settings.throttle_password_changes_per_user,
            settings.throttle_password_changes_per_address,
        ),
        "register": (
            settings.throttle_registrations_per_address,
            settings.throttle_registrations_per_address,
        ),
    }
    user_limit, address_limit = limits.get(kind, (1, 1))
    limit = user_limit if per_user else address_limit
    return throttle.Rule(key, limit, settings.throttle_budget_window_seconds, failure=False)


def _lock_patterns(*, email: str | None, address: str | None) -> list[str]:
    patterns: list[str] = []
    if email is not None:
        account = throttle.account_key(account_name(email))
        patterns += [account, f"%:{account}", f"{throttle.PAIR}:{account.partition(':')[2]}:%"]
    if address is not None:
        addr = throttle.address_key(address)
        patterns += [addr, f"%:{addr}", f"{throttle.PAIR}:%:{addr.partition(':')[2]}"]
    return patterns


@dataclass
class Lock:
    """A throttling key that refuses attempts now."""

    key: str
    entries: int
    retry_after: int


async def list_locks(
    session: AsyncSession, settings: AuthSettings, *, email: str | None, now: datetime
) -> list[Lock]:
    """Keys that refuse attempts now: every one, or those of one account."""
    longest = max(
        settings.throttle_window_seconds,
        settings.throttle_account_window_seconds,
        settings.throttle_budget_window_seconds,
    )
    counted = await repository.throttle_counts(
        session,
        patterns=_lock_patterns(email=email, address=None),
        since=now - timedelta(seconds=longest),
    )
    locks: list[Lock] = []
    for key, _count, _latest in counted:
        entries = await repository.throttle_entries_since(
            session, keys=[key], since=now - timedelta(seconds=longest)
        )
        rule = _rule_for_key(settings, key)
        wait = rule.retry_after(entries.get(key, []), now=now)
        if wait is not None:
            locks.append(Lock(key=key, entries=len(entries.get(key, [])), retry_after=wait))
    return locks


async def clear_locks(session: AsyncSession, *, email: str | None, address: str | None) -> int:
    """Forget every entry of an account or of an address; how many went."""
    return await repository.clear_throttle_keys(
        session, patterns=_lock_patterns(email=email, address=address)
    )


# --- grants --------------------------------------------------------------------------------


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
) -> TokenResponse | ProblemError:
    requested = parse_scope(scope)
    if isinstance(requested, ProblemError):
        return requested
    settings = ctx.settings
    account = account_name(username)
    budget = _budget_rules(
        settings,
        "token",
        address=address,
        per_address=settings.throttle_token_requests_per_address,
        account=account,
        per_user=settings.throttle_token_requests_per_user,
    )
    # Reserved before any user lookup: a locked username answers the same whether it exists.
    reservation = await reserve_password_check(
        session, settings, account=account, address=address, budget=budget, now=now
    )
    if isinstance(reservation, int):
        logger.info("sign-in throttled", extra={"retry_after": reservation})
        return errors.throttled(reservation)
    email_normalized = normalize_email(username)
    user = None
    if email_normalized is not None:
        user = await repository.get_user_by_email(session, email_normalized=email_normalized)
    try:
        if user is None:
            await ctx.hasher.verify_dummy(password)
            return errors.wrong_credentials()
        matches, new_hash = await ctx.hasher.verify(password, user.password_hash)
    except Exception:
        await release_after_error(session, reservation)
        raise
    if not matches:
        return errors.wrong_credentials()
    await password_matched(session, settings, reservation, now=now)
    if new_hash is not None:
        # The stored hash used older parameters: upgrade it while the password is at hand.
        user.password_hash = new_hash
        session.add(user)
    granted = grant_scope(requested, allowed_scopes(user))
    if isinstance(granted, ProblemError):
        return granted
    family = await repository.add_family(
        session,
        RefreshTokenFamily(
            user_id=user.id,
            client_id=client_id,
            scope=granted,
            created_at=now,
            expires_at=now + timedelta(seconds=ctx.settings.refresh_absolute_lifetime_seconds),
            # The expiry of the access token issued just below: the row is written once.
            last_access_expires_at=access_token_expiry(
                now, ctx.settings.access_token_lifetime_seconds
            ),
        ),
    )
    response = await issue_tokens(session, ctx, user=user, family=family, scope=granted, now=now)
    publishing.user_logged_in(session, user, method="password", now=now)
    return response


INVALID_REFRESH = "the refresh token is invalid, expired or revoked"


async def refresh_grant(
    session: AsyncSession,
    ctx: AuthContext,
    *,
    refresh_token: str,
    scope: str | None,
    now: datetime,
) -> TokenResponse | ProblemError:
    requested = parse_scope(scope)
    if isinstance(requested, ProblemError):
        return requested
    found = await repository.find_refresh_token(
        session, token_hash=hash_refresh_token(refresh_token)
    )
    if found is None:
        return errors.invalid_grant(INVALID_REFRESH)
    token, family = found
    if family.revoked_at is not None:
        return errors.invalid_grant(INVALID_REFRESH)
    user = await repository.get_user(session, user_id=family.user_id)
    if user is None:  # pragma: no cover - users are never deleted
        return errors.invalid_grant(INVALID_REFRESH)
    if token.used_at is not None:
        return await _replayed(session, user, family, now=now)
    if token.expires_at <= now or family.expires_at <= now:
        return errors.invalid_grant(INVALID_REFRESH)
    family_scopes = [name for name in family.scope.split() if name in allowed_scopes(user)]
    granted = grant_scope(requested, family_scopes)
    if isinstance(granted, ProblemError):
        return granted
    if not await repository.spend_refresh_token(
        session, user_id=user.id, token_id=token.id, now=now
    ):
        # Another request spent it between our read and our write: a replay all the same.
        return await _replayed(session, user, family, now=now)
    response = await issue_tokens(session, ctx, user=user, family=family, scope=granted, now=now)
    publishing.user_logged_in(session, user, method="refresh", now=now)
    return response


async def _replayed(
    session: AsyncSession, user: User, family: RefreshTokenFamily, *, now: datetime
) -> ProblemError:
    """A spent refresh token came back: someone holds a copy. The whole family goes."""
    logger.warning(
        "spent refresh token presented again; revoking its family",
        extra={"user_id": str(user.id), "session_id": str(family.id)},
    )
    await revoke_family(session, user, family, now=now, reason="replay")
    REFRESH_REPLAYS.inc()
    return errors.invalid_grant(INVALID_REFRESH)


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
    await repository.add_refresh_token(
        session,
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


# --- sessions ------------------------------------------------------------------------------


async def revoke_family(
    session: AsyncSession,
    user: User,
    family: RefreshTokenFamily,
    *,
    now: datetime,
    reason: str,
) -> bool:
    """Revoke a family once and announce it (the gateway refuses its access tokens)."""
    revoked = await repository.revoke_family(
        session, user_id=user.id, family_id=family.id, now=now, reason=reason
    )
    if revoked:
        family.revoked_at = now
        family.revoked_reason = reason
        publishing.session_revoked(session, user, family, now=now)
    return revoked


async def revoke_token(
    session: AsyncSession, ctx: AuthContext, *, token: str, now: datetime
) -> None:
    """RFC 7009: revoke the family of a refresh token (or of an access token's ``sid``)."""
    found = await repository.find_refresh_token(session, token_hash=hash_refresh_token(token))
    if found is not None:
        _, family = found
        user = await repository.get_user(session, user_id=family.user_id)
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
    user = await repository.get_user(session, user_id=claims.user_id)
    if user is None:
        return
    owned = await repository.get_family(session, user_id=user.id, family_id=session_id)
    if owned is not None:
        await revoke_family(session, user, owned, now=now, reason="revoked")


# --- signing keys --------------------------------------------------------------------------


def _published_after_retirement(settings: AuthSettings) -> timedelta:
    """How long a key stays in the JWKS once it stops signing: its last token's lifetime."""
    return timedelta(seconds=settings.access_token_lifetime_seconds + settings.token_leeway_seconds)


async def _key_in_role(
    session: AsyncSession, ctx: AuthContext, *, role: str, now: datetime
) -> SigningKey:
    """The key in ``role``, created when there is none (first start, or a lost next key)."""
    key = await repository.get_signing_key_in_role(session, role=role)
    if key is not None:
        return key
    key = await new_signing_key(ctx.keys, ctx.settings.signing_key_bits)
    key.role = role
    key.created_at = now
    key.activates_at = now if role == repository.ACTIVE else None
    if await repository.add_signing_key_unless_role_taken(session, key):
        if role == repository.ACTIVE:
            KEY_ROTATIONS.inc()
        logger.info("signing key created", extra={"kid": key.kid, "role": role})
        return key
    # Another replica created one at the same moment: use its key, as every replica will.
    theirs = await repository.get_signing_key_in_role(session, role=role)
    if theirs is None:  # pragma: no cover - the conflict was on this very role
        raise RuntimeError(f"no {role} signing key after a conflict on that role")
    return theirs


async def ensure_signing_keys(
    session: AsyncSession, ctx: AuthContext, *, now: datetime
) -> tuple[SigningKey, SigningKey]:
    """The active key and the pre-published next key, each created if missing."""
    active = await _key_in_role(session, ctx, role=repository.ACTIVE, now=now)
    upcoming = await _key_in_role(session, ctx, role=repository.NEXT, now=now)
    return active, upcoming


async def ensure_signing_key(
    session: AsyncSession, ctx: AuthContext, *, now: datetime
) -> SigningKey:
    """The active key (one query); the keys are created when there are none yet."""
    active = await repository.get_active_signing_key(session)
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
    active, upcoming = await ensure_signing_keys(session, ctx, now=now)
    if only_when_due and not _rotation_due(settings, active, upcoming, now=now):
        return active
    expires_at = now + _published_after_retirement(settings)
    if not await repository.retire_signing_key(
        session, kid=active.kid, now=now, expires_at=expires_at
    ):
        # A rotation on another replica retired this key between our read and our write
        # (our UPDATE waited for its commit). It promoted the same next key: that is the
        # rotation asked for, and promoting the key it has just created would not be.
        current = await repository.get_active_signing_key(session)
        if current is None:  # pragma: no cover - a rotation always leaves an active key
            raise RuntimeError("no active signing key after a concurrent rotation")
        logger.info("signing key rotated concurrently elsewhere", extra={"kid": current.kid})
        return current
    # Holding the active key's row, no other rotation can get here: the next key is ours.
    if not await repository.promote_signing_key(session, kid=upcoming.kid, now=now):
        raise RuntimeError("the next signing key changed during a rotation")
    successor = await _key_in_role(session, ctx, role=repository.NEXT, now=now)
    promoted = await repository.get_active_signing_key(session)
    if promoted is None or promoted.kid != upcoming.kid:  # pragma: no cover
        raise RuntimeError("the promoted signing key is not the active one")
    KEY_ROTATIONS.inc()
    logger.info(
        "signing key rotated",
        extra={"kid": promoted.kid, "retired_kid": active.kid, "next_kid": successor.kid},
    )
    return promoted


async def maintain(session: AsyncSession, ctx: AuthContext, *, now: datetime) -> SigningKey:
    """Upkeep on every replica: keys present, rotation by age, expired keys, old failures."""
    key = await rotate_signing_key(session, ctx, now=now, only_when_due=True)
    deleted = await repository.delete_expired_signing_keys(session, now=now)
    if deleted:
        logger.info("expired signing keys removed", extra={"keys": deleted})
    settings = ctx.settings
    longest = max(
        settings.throttle_window_seconds,
        settings.throttle_account_window_seconds,
        settings.throttle_budget_window_seconds,
    )
    await repository.delete_throttle_entries_before(
        session, before=now - timedelta(seconds=longest)
    )
    await repository.forget_usual_addresses(
        session, before=now - timedelta(seconds=settings.throttle_usual_address_lifetime_seconds)
    )
    return key


async def published_jwks(session: AsyncSession, *, now: datetime) -> JsonWebKeySet:
    rows = await repository.get_published_signing_keys(session, now=now)
    return JsonWebKeySet(keys=[public_jwk(row) for row in rows if row.algorithm == ALGORITHM])
