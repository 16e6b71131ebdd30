"""Email addresses as accounts compare them."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

# The width of the users.email and users.email_normalized columns.
EMAIL_MAX_LENGTH = 320


def normalize_email(value: str) -> str | None:
    """The form uniqueness and sign-in compare (case-insensitive), or None if not an email."""
    try:
        normalized = validate_email(value.strip(), check_deliverability=False).normalized
    except EmailNotValidError:
        return None
    return normalized.casefold()
