"""Alembic environment of the tasks service: it imports only the tasks models."""

from __future__ import annotations

import os

from alembic import context
from sqlmodel import SQLModel

import momentum_tasks.models  # noqa: F401  (registers the tasks tables)
from momentum_shared.migrations import run_env

if not context.config.get_main_option("sqlalchemy.url"):
    context.config.set_main_option(
        "sqlalchemy.url",
        os.environ.get("MOMENTUM_TASKS_DATABASE_URL", "sqlite+aiosqlite:///./.momentum/tasks.db"),
    )
run_env(SQLModel.metadata)
