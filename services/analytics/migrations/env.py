"""Alembic environment of the analytics service: the analytics models' own metadata."""

from __future__ import annotations

import os

from alembic import context

from momentum_analytics.models import AnalyticsBase
from momentum_shared.migrations import run_env

if not context.config.get_main_option("sqlalchemy.url"):
    context.config.set_main_option(
        "sqlalchemy.url",
        os.environ.get(
            "MOMENTUM_ANALYTICS_DATABASE_URL", "sqlite+aiosqlite:///./.momentum/analytics.db"
        ),
    )
run_env(AnalyticsBase.metadata)
