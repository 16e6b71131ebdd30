"""Text a database cannot store is refused at the edge; only real zone names pass as zones."""

from __future__ import annotations

import pytest

from momentum_shared.validation import storable_text, valid_timezone


@pytest.mark.parametrize("value", ["plain", "Grüße 🎯", "", "tab\there"])
def test_ordinary_text_passes(value: str) -> None:
    assert storable_text(value) == value


@pytest.mark.parametrize(
    ("value", "message"),
    [("a\x00b", "NUL"), ("lone \ud800 surrogate", "valid Unicode")],
)
def test_unstorable_text_is_refused(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        storable_text(value)


@pytest.mark.parametrize("name", ["UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires"])
def test_a_real_zone_name_is_kept(name: str) -> None:
    assert valid_timezone(name) == name


@pytest.mark.parametrize("name", [None, "", "Mars/Olympus_Mons", "../etc/passwd", "A" * 65])
def test_anything_else_is_no_zone(name: str | None) -> None:
    assert valid_timezone(name) is None
