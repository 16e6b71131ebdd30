"""Validators for text a client sends and a database must store, and for time zone names."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def storable_text(value: str) -> str:
    """Refuse what a database cannot store: a 422 at the edge instead of a driver error.

    PostgreSQL text cannot hold NUL, and a lone surrogate cannot be encoded at all.
    """
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


def valid_timezone(name: str | None) -> str | None:
    """``name`` when it names a real IANA zone (at most 64 characters), else ``None``."""
    if not name or len(name) > 64:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name
