"""Throttling arithmetic of auth: which keys an attempt counts against, and how long to wait.

Pure functions only; the entries themselves live in the database (``throttle_entries``) so
every replica counts the same attempts, and the service reserves them before any password
is checked. Keys are digests, never the typed text: a mistyped password in the username
field is never stored.

Three kinds of rule:

- a **failure budget** over a sliding window, per (account, address) pair and per address
  across accounts (spraying);
- a **progressive delay** for the account as a whole, counting only failures from addresses
  the account never signed in from: each one beyond the free ones doubles the wait after the
  latest, up to a ceiling, so strangers slow down without locking the owner out of the
  addresses they usually sign in from;
- a **request budget** per endpoint, per user and per address, counting every request.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

# Kinds of key; the kind is the key's prefix.
ACCOUNT = "acct"
PAIR = "pair"
ADDRESS = "addr"
FAILURE_KINDS = (ACCOUNT, PAIR, ADDRESS)


def client_address(host: str) -> str:
    """The address a client is counted under: an IPv6 client usually holds a whole /64, so
    the /64; an IPv4-mapped IPv6 address as the IPv4 address it maps."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{address}/64", strict=False))
    return str(address)


def digest(value: str) -> str:
    """128 bits of SHA-256, enough to tell keys apart and short enough to index."""
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def account_key(account: str) -> str:
    """``account`` is the normalised email (or the typed username when it is not one)."""
    return f"{ACCOUNT}:{digest(account)}"


def address_key(address: str) -> str:
    return f"{ADDRESS}:{digest(address)}"


def pair_key(account: str, address: str) -> str:
    return f"{PAIR}:{digest(account)}:{digest(address)}"


def budget_key(endpoint: str, key: str) -> str:
    """The request budget of ``endpoint`` for an account or address key."""
    return f"{endpoint}:{key}"


@dataclass(frozen=True)
class Rule:
    """One limit an attempt is checked against and, when allowed, counted under.

    ``progressive`` rules allow ``limit`` entries freely, then make each further attempt
    wait ``base_delay_seconds * 2 ** (entries - limit)`` (at most ``max_delay_seconds``)
    after the latest entry. Other rules allow ``limit`` entries per window.
    ``failure`` rules' entries are released when the attempt succeeds.
    """

    key: str
    limit: int
    window_seconds: int
    failure: bool = True
    progressive: bool = False
    base_delay_seconds: int = 1
    max_delay_seconds: int = 900

    def retry_after(self, times: Sequence[datetime], *, now: datetime) -> int | None:
        """Seconds to wait given the entries in the window (oldest first), or None."""
        if self.progressive:
            return progressive_retry_after(
                times,
                free=self.limit,
                base_delay_seconds=self.base_delay_seconds,
                max_delay_seconds=self.max_delay_seconds,
                now=now,
            )
        return window_retry_after(
            times, limit=self.limit, window_seconds=self.window_seconds, now=now
        )


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, math.ceil((moment - now).total_seconds()))


def window_retry_after(
    times: Sequence[datetime], *, limit: int, window_seconds: int, now: datetime
) -> int | None:
    """``limit`` entries per sliding window: allowed again once enough of the oldest leave it."""
    window = timedelta(seconds=window_seconds)
    recent = [at for at in times if at > now - window]
    if len(recent) < limit:
        return None
    return _seconds_until(recent[len(recent) - limit] + window, now)


def progressive_delay_seconds(
    entries: int, *, free: int, base_delay_seconds: int, max_delay_seconds: int
) -> int:
    """The wait after the latest of ``entries``: none while free, then doubling to the ceiling."""
    if entries < free:
        return 0
    exponent = min(entries - free, 62)
    return int(min(max_delay_seconds, base_delay_seconds * 2**exponent))


def progressive_retry_after(
    times: Sequence[datetime],
    *,
    free: int,
    base_delay_seconds: int,
    max_delay_seconds: int,
    now: datetime,
) -> int | None:
    delay = progressive_delay_seconds(
        len(times),
        free=free,
        base_delay_seconds=base_delay_seconds,
        max_delay_seconds=max_delay_seconds,
    )
    if delay == 0:
        return None
    allowed_at = max(times) + timedelta(seconds=delay)
    return _seconds_until(allowed_at, now) if allowed_at > now else None


def retry_after(
    rules: Sequence[Rule], entries: Mapping[str, Sequence[datetime]], *, now: datetime
) -> int | None:
    """The longest wait any rule asks for, or None when the attempt is allowed."""
    waits = [
        wait
        for rule in rules
        if (wait := rule.retry_after(entries.get(rule.key, ()), now=now)) is not None
    ]
    return max(waits) if waits else None


def longest_window_seconds(rules: Sequence[Rule]) -> int:
    return max((rule.window_seconds for rule in rules), default=0)
