"""Text a database cannot store is refused at the edge."""

from __future__ import annotations

import pytest

from momentum_shared.validation import storable_text


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
