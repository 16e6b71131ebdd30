"""Settings of the tasks service (environment prefix ``MOMENTUM_TASKS_``)."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from momentum_shared.settings import DatabaseSettings, NatsSettings, TokenVerificationSettings

DEVELOPMENT_CURSOR_SECRET = "momentum-development-cursor-secret"


class TasksSettings(DatabaseSettings, NatsSettings, TokenVerificationSettings):
    model_config = SettingsConfigDict(env_prefix="MOMENTUM_TASKS_", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./.momentum/tasks.db"
    # Signs list cursors so a tampered one is refused; every replica needs the same value.
    cursor_secret: SecretStr = SecretStr(DEVELOPMENT_CURSOR_SECRET)
    idempotency_ttl_hours: float = Field(default=24.0, gt=0)
    # Room for the largest valid task even when every character is JSON-escaped.
    max_body_bytes: int = Field(default=256 * 1024, gt=0)
    # The relay runs inside the service unless an operator runs it on its own.
    outbox_relay_enabled: bool = True
    outbox_batch_size: int = Field(default=500, ge=1, le=4000)
    outbox_poll_interval: float = Field(default=0.2, gt=0)
    outbox_retention_hours: float = Field(default=7 * 24, gt=0)
    # 3 in production, where JetStream runs as a cluster of three.
    nats_stream_replicas: int = Field(default=1, ge=1, le=5)

    @model_validator(mode="after")
    def _refuse_development_secret(self) -> TasksSettings:
        if (
            not self.is_development
            and self.cursor_secret.get_secret_value() == DEVELOPMENT_CURSOR_SECRET
        ):
            raise ValueError("MOMENTUM_TASKS_CURSOR_SECRET must be set outside development")
        return self
