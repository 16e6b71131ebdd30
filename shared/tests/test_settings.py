"""The production check on secrets: public, repetitive or low-entropy values are refused."""

from __future__ import annotations

import secrets

import pytest

from momentum_shared.settings import MIN_SECRET_BITS, check_secret, secret_bits


@pytest.mark.parametrize(
    "value",
    [
        "",
        "x",
        "a" * 32,
        "a" * 100,
        "ab" * 40,
        "0123456789abcdef" * 4,
        secrets.token_hex(16),
        secrets.token_urlsafe(24),
        "correct horse battery staple",
    ],
)
def test_weak_secrets_are_refused_with_the_setting_named_and_a_way_to_make_one(
    value: str,
) -> None:
    with pytest.raises(ValueError, match="MOMENTUM_X_SECRET") as refused:
        check_secret("MOMENTUM_X_SECRET", value)
    assert "python -c 'import secrets; print(secrets.token_urlsafe(32))'" in str(refused.value)


def test_a_known_development_value_is_refused_whatever_its_entropy() -> None:
    public = "momentum-development-key-encryption-key-not-secret"
    assert secret_bits(public) >= MIN_SECRET_BITS
    with pytest.raises(ValueError, match="development default"):
        check_secret("MOMENTUM_X_SECRET", public, known=(public,))


@pytest.mark.parametrize(
    "make",
    [
        lambda: secrets.token_urlsafe(32),
        lambda: secrets.token_hex(32),
        lambda: secrets.token_hex(32).upper(),
        lambda: __import__("base64").b64encode(secrets.token_bytes(32)).decode(),
    ],
)
def test_generated_secrets_of_32_bytes_are_accepted(make: object) -> None:
    for _ in range(50):
        check_secret("MOMENTUM_X_SECRET", make())  # type: ignore[operator]


def test_hex_and_base64_count_the_bits_they_decode_to() -> None:
    assert secret_bits("ab" * 32) == 256  # hex: 4 bits a character, not log2(36)
    assert secret_bits("A" * 43) <= 43 * 6


def test_every_secret_the_advice_generates_is_accepted() -> None:
    # A token_urlsafe(32) without digits or '-'/'_' (about 1 in 4,500) was once refused.
    check_secret("MOMENTUM_X_SECRET", "KYvkoPyZfnMlauzcnLgfXaWoJlvjPRBudwbXLrDyqmA")
    for _ in range(2000):
        check_secret("MOMENTUM_X_SECRET", secrets.token_urlsafe(32))
        check_secret("MOMENTUM_X_SECRET", secrets.token_hex(32))
