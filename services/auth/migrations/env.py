"""Alembic environment of the auth service: it imports only the auth models."""

from __future__ import annotations

import os

from alembic import context
from sqlmodel import SQLModel

import momentum_auth.models  # noqa: F401  (registers the auth tables)
from momentum_shared.migrations import run_env

if not context.config.get_main_option("sqlalchemy.url"):
    context.config.set_main_option(
        "sqlalchemy.url",
        os.environ.get("MOMENTUM_AUTH_DATABASE_URL", "sqlite+aiosqlite:///./.momentum/auth.db"),
    )
run_env(SQLModel.metadata)
