"""Properties of the pure rules: scope narrowing, email normalisation, throttle keys."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from momentum_auth import service
from momentum_shared.errors import ProblemError

scopes = st.lists(st.sampled_from(service.SCOPES), unique=True)


@settings(max_examples=60, deadline=None)
@given(requested=scopes, allowed=scopes)
def test_a_grant_is_exactly_the_requested_subset_or_refused(
    requested: list[str], allowed: list[str]
) -> None:
    granted = service.grant_scope(requested or None, allowed)
    if not requested:
        assert isinstance(granted, str)
        assert set(granted.split()) == set(allowed)
    elif set(requested) <= set(allowed):
        assert isinstance(granted, str)
        assert set(granted.split()) == set(requested)
        # Canonical order, so equal grants are equal strings.
        assert granted.split() == [name for name in service.SCOPES if name in requested]
    else:
        assert isinstance(granted, ProblemError)
        assert granted.extra["error"] == "invalid_scope"


@settings(max_examples=60, deadline=None)
@given(local=st.from_regex(r"[a-z0-9]{1,20}", fullmatch=True), upper=st.booleans())
def test_email_normalisation_ignores_case_and_spaces(local: str, upper: bool) -> None:
    email = f"{local}@Example.COM"
    variant = f"  {email.upper() if upper else email}  "
    assert service.normalize_email(variant) == service.normalize_email(email)
    assert service.normalize_email(email) == f"{local}@example.com"
    assert service.username_key(variant) == service.username_key(email)


@settings(max_examples=30, deadline=None)
@given(text=st.text(min_size=1, max_size=60))
def test_throttle_keys_never_hold_the_typed_text(text: str) -> None:
    from momentum_auth.settings import AuthSettings

    keys = [key for key, _limit in service.throttle_keys(AuthSettings(), text, "198.51.100.7")]
    # Only a kind and a SHA-256 digest: whatever was typed is never stored as such.
    assert [key.partition(":")[0] for key in keys] == ["user", "addr"]
    for key in keys:
        assert re.fullmatch(r"(user|addr):[0-9a-f]{64}", key)


def test_unknown_scopes_are_refused() -> None:
    refused = service.parse_scope("profile tasks:delete")
    assert isinstance(refused, ProblemError)
    assert refused.extra["error"] == "invalid_scope"
    assert service.parse_scope("  ") is None
    assert service.parse_scope("profile  tasks:read") == ["profile", "tasks:read"]
