"""Scopes: which exist, which a user may hold, and what a request is granted."""

from __future__ import annotations

from collections.abc import Sequence

from momentum_auth import errors
from momentum_auth.models import User

USER_SCOPES = ("profile", "tasks:read", "tasks:write", "analytics:read", "analytics:write")
ADMIN_SCOPE = "admin"
SCOPES = (*USER_SCOPES, ADMIN_SCOPE)


def allowed_scopes(user: User) -> tuple[str, ...]:
    return SCOPES if user.is_admin else USER_SCOPES


def parse_scope(raw: str | None) -> list[str] | None:
    """The requested scopes (None when absent); raises ``invalid_scope`` for an unknown one."""
    if raw is None or not raw.strip():
        return None
    requested = raw.split()
    unknown = sorted({name for name in requested if name not in SCOPES})
    if unknown:
        raise errors.invalid_scope(f"unknown scope: {' '.join(unknown)[:200]}")
    return requested


def grant_scope(requested: list[str] | None, allowed: Sequence[str]) -> str:
    """Every allowed scope when none is asked for, else exactly the asked subset (which must
    be allowed: ``invalid_scope`` is raised otherwise)."""
    if requested is None:
        return " ".join(allowed)
    beyond = sorted(set(requested) - set(allowed))
    if beyond:
        raise errors.invalid_scope(f"scope not granted to this client: {' '.join(beyond)}")
    return " ".join(name for name in SCOPES if name in requested)
