"""Alembic environment of the auth service: the auth models' own metadata."""

from __future__ import annotations

import os

from alembic import context

from momentum_auth.models import AuthBase
from momentum_shared.migrations import run_env

if not context.config.get_main_option("sqlalchemy.url"):
    context.config.set_main_option(
        "sqlalchemy.url",
        os.environ.get("MOMENTUM_AUTH_DATABASE_URL", "sqlite+aiosqlite:///./.momentum/auth.db"),
    )
run_env(AuthBase.metadata)
