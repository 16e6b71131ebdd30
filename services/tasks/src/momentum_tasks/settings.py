"""Settings of the tasks service (environment prefix ``MOMENTUM_TASKS_``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from momentum_shared.settings import DatabaseSettings, NatsSettings, TokenVerificationSettings


class TasksSettings(DatabaseSettings, NatsSettings, TokenVerificationSettings):
    model_config = SettingsConfigDict(env_prefix="MOMENTUM_TASKS_", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./.momentum/tasks.db"
