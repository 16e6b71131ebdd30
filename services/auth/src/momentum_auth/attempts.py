"""Counted attempts: request budgets, password-check reservations, and the operators' locks.

The arithmetic is ``throttle``'s; this module holds what is stored. The one exception to
"the request owns the transaction" is ``reserve``: a throttled attempt is counted and
committed before the password is checked, so concurrent attempts cannot pass the limits
together, and a refusal raised afterwards cannot roll the count back.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from momentum_auth import throttle
from momentum_auth.emails import normalize_email
from momentum_auth.repositories.attempts import AttemptRepository
from momentum_auth.settings import AuthSettings


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


def budget_rules(
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


async def failure_rules(
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
    usual = await AttemptRepository(session).is_usual_address(
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
    attempts = AttemptRepository(session)
    keys = [rule.key for rule in rules]
    await attempts.lock_throttle_keys(
        keys=keys,
        before=now - timedelta(seconds=throttle.longest_window_seconds(rules)),
    )
    earliest = now - timedelta(seconds=throttle.longest_window_seconds(rules))
    entries = await attempts.entries_since(keys=keys, since=earliest)
    wait = throttle.retry_after(rules, entries, now=now)
    if wait is not None:
        await session.rollback()
        return wait
    ids = await attempts.add_entries(keys=keys, now=now)
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
    rules = [*budget, *await failure_rules(session, settings, account, address, now=now)]
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
    attempts = AttemptRepository(session)
    await attempts.lock_keys(keys=[reservation.pair_key, reservation.account_key])
    await attempts.delete_entries(ids=reservation.failure_ids)
    await attempts.clear_keys(patterns=[reservation.pair_key])
    await attempts.remember_usual_address(
        account_key=reservation.account_key,
        address_key=reservation.address_key,
        now=now,
        keep=settings.throttle_usual_addresses_per_account,
    )


async def release_after_error(session: AsyncSession, reservation: Reservation) -> None:
    """The check itself failed (the hasher is busy): the attempt counts against nothing,
    so filling the hasher cannot spend someone else's budget."""
    await session.rollback()
    await AttemptRepository(session).delete_entries(ids=reservation.entry_ids)
    await session.commit()


async def sign_in_retry_after(
    session: AsyncSession, settings: AuthSettings, *, username: str, address: str, now: datetime
) -> int | None:
    """Seconds until a password check for this username from this address is allowed."""
    rules = await failure_rules(session, settings, account_name(username), address, now=now)
    earliest = now - timedelta(seconds=throttle.longest_window_seconds(rules))
    entries = await AttemptRepository(session).entries_since(
        keys=[rule.key for rule in rules], since=earliest
    )
    return throttle.retry_after(rules, entries, now=now)


def longest_window_seconds(settings: AuthSettings) -> int:
    """How long any entry can count: older ones are forgotten."""
    return max(
        settings.throttle_window_seconds,
        settings.throttle_account_window_seconds,
        settings.throttle_budget_window_seconds,
    )


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
    attempts = AttemptRepository(session)
    longest = longest_window_seconds(settings)
    counted = await attempts.counts(
        patterns=_lock_patterns(email=email, address=None),
        since=now - timedelta(seconds=longest),
    )
    locks: list[Lock] = []
    for key, _count, _latest in counted:
        entries = await attempts.entries_since(keys=[key], since=now - timedelta(seconds=longest))
        rule = _rule_for_key(settings, key)
        wait = rule.retry_after(entries.get(key, []), now=now)
        if wait is not None:
            locks.append(Lock(key=key, entries=len(entries.get(key, [])), retry_after=wait))
    return locks


async def clear_locks(session: AsyncSession, *, email: str | None, address: str | None) -> int:
    """Forget every entry of an account or of an address; how many went."""
    return await AttemptRepository(session).clear_keys(
        patterns=_lock_patterns(email=email, address=address)
    )
