"""Settings of the tasks service (environment prefix ``MOMENTUM_TASKS_``)."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from momentum_shared.settings import (
    DatabaseSettings,
    OutboxSettings,
    PruneSettings,
    RevocationSettings,
    check_secret,
)

DEVELOPMENT_CURSOR_SECRET = "momentum-development-cursor-secret"


class TasksSettings(DatabaseSettings, OutboxSettings, PruneSettings, RevocationSettings):
    model_config = SettingsConfigDict(env_prefix="MOMENTUM_TASKS_", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./.momentum/tasks.db"
    """SQLAlchemy async URL of the tasks database"""
    cursor_secret: SecretStr = SecretStr(DEVELOPMENT_CURSOR_SECRET)
    """signs list cursors; every replica needs the same value (at least 256 bits of entropy)"""
    idempotency_ttl_seconds: int = Field(default=24 * 3600, ge=1)
    """how long an Idempotency-Key is remembered per user"""
    tombstone_retention_seconds: int = Field(default=30 * 24 * 3600, ge=1)
    """how long the changes feed remembers a deleted task; older feed tokens must resync"""
    # Room for the largest valid task even when every character is JSON-escaped.
    max_body_bytes: int = Field(default=256 * 1024, gt=0)
    """largest request body accepted (413 above)"""

    @model_validator(mode="after")
    def _refuse_development_secret(self) -> TasksSettings:
        if not self.is_development:
            check_secret(
                "MOMENTUM_TASKS_CURSOR_SECRET",
                self.cursor_secret.get_secret_value(),
                known=(DEVELOPMENT_CURSOR_SECRET,),
            )
        return self
