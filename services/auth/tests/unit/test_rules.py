"""Properties of the pure rules: scope narrowing, email normalisation, throttle keys."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from momentum_auth import attempts, scopes, throttle
from momentum_auth.emails import normalize_email
from momentum_shared.errors import ProblemError

scope_lists = st.lists(st.sampled_from(scopes.SCOPES), unique=True)


@settings(max_examples=60, deadline=None)
@given(requested=scope_lists, allowed=scope_lists)
def test_a_grant_is_exactly_the_requested_subset_or_refused(
    requested: list[str], allowed: list[str]
) -> None:
    if not requested:
        granted = scopes.grant_scope(None, allowed)
        assert set(granted.split()) == set(allowed)
    elif set(requested) <= set(allowed):
        granted = scopes.grant_scope(requested, allowed)
        assert set(granted.split()) == set(requested)
        # Canonical order, so equal grants are equal strings.
        assert granted.split() == [name for name in scopes.SCOPES if name in requested]
    else:
        with pytest.raises(ProblemError) as refused:
            scopes.grant_scope(requested, allowed)
        assert refused.value.extra["error"] == "invalid_scope"


@settings(max_examples=60, deadline=None)
@given(local=st.from_regex(r"[a-z0-9]{1,20}", fullmatch=True), upper=st.booleans())
def test_email_normalisation_ignores_case_and_spaces(local: str, upper: bool) -> None:
    email = f"{local}@Example.COM"
    variant = f"  {email.upper() if upper else email}  "
    assert normalize_email(variant) == normalize_email(email)
    assert normalize_email(email) == f"{local}@example.com"
    assert throttle.account_key(attempts.account_name(variant)) == throttle.account_key(
        attempts.account_name(email)
    )


@settings(max_examples=30, deadline=None)
@given(text=st.text(min_size=1, max_size=60))
def test_throttle_keys_never_hold_the_typed_text(text: str) -> None:
    account = attempts.account_name(text)
    keys = [
        throttle.account_key(account),
        throttle.pair_key(account, "198.51.100.7"),
        throttle.address_key("198.51.100.7"),
    ]
    # Only a kind and digests: whatever was typed is never stored as such.
    assert [key.partition(":")[0] for key in keys] == ["acct", "pair", "addr"]
    for key in keys:
        assert re.fullmatch(r"(acct|addr):[0-9a-f]{32}|pair:[0-9a-f]{32}:[0-9a-f]{32}", key)
        assert len(key) <= 100


def test_failures_per_window_lift_as_the_oldest_leave() -> None:
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    times = [now - timedelta(seconds=s) for s in (800, 600, 300, 100, 10)]
    assert throttle.window_retry_after(times[1:], limit=5, window_seconds=900, now=now) is None
    assert throttle.window_retry_after(times, limit=5, window_seconds=900, now=now) == 100
    # Entries older than the window do not count.
    assert throttle.window_retry_after(times, limit=5, window_seconds=700, now=now) is None


def test_the_account_delay_doubles_with_each_failure_up_to_the_ceiling() -> None:
    delays = [
        throttle.progressive_delay_seconds(
            failures, free=5, base_delay_seconds=2, max_delay_seconds=900
        )
        for failures in range(4, 16)
    ]
    assert delays == [0, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900]
    assert (
        throttle.progressive_delay_seconds(
            10**6, free=5, base_delay_seconds=2, max_delay_seconds=900
        )
        == 900
    )
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    six = [now - timedelta(seconds=1)] * 6
    # Six failures, the latest a second ago: four seconds after it, three from now.
    assert (
        throttle.progressive_retry_after(
            six, free=5, base_delay_seconds=2, max_delay_seconds=900, now=now
        )
        == 3
    )
    assert (
        throttle.progressive_retry_after(
            six, free=5, base_delay_seconds=2, max_delay_seconds=900, now=now + timedelta(seconds=3)
        )
        is None
    )


def test_unknown_scopes_are_refused() -> None:
    with pytest.raises(ProblemError) as refused:
        scopes.parse_scope("profile tasks:delete")
    assert refused.value.extra["error"] == "invalid_scope"
    assert scopes.parse_scope("  ") is None
    assert scopes.parse_scope("profile  tasks:read") == ["profile", "tasks:read"]


def test_an_ipv6_client_is_counted_by_its_64_and_a_mapped_ipv4_as_itself() -> None:
    counted = throttle.client_address
    assert counted("2001:db8:1:2:aaaa::1") == counted("2001:db8:1:2:bbbb::9")
    assert throttle.client_address("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert throttle.client_address("2001:db8:1:3::1") != throttle.client_address("2001:db8:1:2::1")
    assert throttle.client_address("::ffff:203.0.113.7") == "203.0.113.7"
    assert throttle.client_address("203.0.113.7") == "203.0.113.7"
    assert throttle.client_address("unknown") == "unknown"
