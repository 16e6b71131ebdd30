"""Settings of the auth service (environment prefix ``MOMENTUM_AUTH_``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from momentum_shared.settings import DatabaseSettings, NatsSettings, TokenVerificationSettings


class AuthSettings(DatabaseSettings, NatsSettings, TokenVerificationSettings):
    model_config = SettingsConfigDict(env_prefix="MOMENTUM_AUTH_", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./.momentum/auth.db"
