"""Alembic environment of the analytics service: it imports only the analytics models."""

from __future__ import annotations

import os

from alembic import context
from sqlmodel import SQLModel

import momentum_analytics.models  # noqa: F401  (registers the analytics tables)
from momentum_shared.migrations import run_env

if not context.config.get_main_option("sqlalchemy.url"):
    context.config.set_main_option(
        "sqlalchemy.url",
        os.environ.get(
            "MOMENTUM_ANALYTICS_DATABASE_URL", "sqlite+aiosqlite:///./.momentum/analytics.db"
        ),
    )
run_env(SQLModel.metadata)
