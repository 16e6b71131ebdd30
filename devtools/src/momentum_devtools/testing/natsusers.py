"""The NATS users of this test session: every embedded server has them, with their permissions."""

from __future__ import annotations

from momentum_devtools.natsserver import generate_passwords
from momentum_shared.nats import NatsAuth

NATS_PASSWORDS = generate_passwords()
"""Each program's password and the admin's (the same on every embedded server of the session)."""


def nats_auth(user: str) -> NatsAuth:
    """Connect as ``user`` (auth, tasks, analytics, gateway or admin) with its permissions."""
    return NatsAuth(user, NATS_PASSWORDS[user])
