"""Alembic environment of the tasks service: the tasks models' own metadata."""

from __future__ import annotations

import os

from alembic import context

from momentum_shared.migrations import run_env
from momentum_tasks.models import TasksBase

if not context.config.get_main_option("sqlalchemy.url"):
    context.config.set_main_option(
        "sqlalchemy.url",
        os.environ.get("MOMENTUM_TASKS_DATABASE_URL", "sqlite+aiosqlite:///./.momentum/tasks.db"),
    )
run_env(TasksBase.metadata)
