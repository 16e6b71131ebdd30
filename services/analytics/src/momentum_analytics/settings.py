"""Settings of the analytics service (environment prefix ``MOMENTUM_ANALYTICS_``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from momentum_shared.settings import DatabaseSettings, NatsSettings, TokenVerificationSettings


class AnalyticsSettings(DatabaseSettings, NatsSettings, TokenVerificationSettings):
    model_config = SettingsConfigDict(env_prefix="MOMENTUM_ANALYTICS_", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./.momentum/analytics.db"
