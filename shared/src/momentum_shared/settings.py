"""Settings base shared by every Momentum service (pydantic-settings)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

Environment = Literal["development", "test", "production"]


class MomentumSettings(BaseSettings):
    """Fields every service has; each service subclasses with its own ``env_prefix``."""

    model_config = SettingsConfigDict(extra="ignore", env_file=None)

    environment: Environment = "development"
    log_level: str = "INFO"
    log_json: bool = True

    @property
    def is_development(self) -> bool:
        return self.environment in ("development", "test")


class DatabaseSettings(MomentumSettings):
    """A service that owns a database."""

    database_url: str = Field(
        default="sqlite+aiosqlite:///./.momentum/service.db",
        description="SQLAlchemy async URL (sqlite+aiosqlite:///… or postgresql+asyncpg://…)",
    )
    database_pool_size: int = 10


class NatsSettings(BaseSettings):
    """Connection to NATS JetStream (mixed into services that publish or consume)."""

    nats_url: str = "nats://127.0.0.1:4222"
    nats_connect_timeout: float = 2.0
    # Replicas of the streams a producer creates: 1 on a laptop, 3 on a production cluster.
    nats_stream_replicas: int = Field(default=1, ge=1, le=5)


class TokenVerificationSettings(BaseSettings):
    """How a service verifies access tokens issued by auth."""

    jwks_url: str = "http://127.0.0.1:8001/.well-known/jwks.json"
    token_issuer: str = "http://127.0.0.1:8000"
    token_audience: str = "momentum-api"
    token_algorithms: tuple[str, ...] = ("RS256",)
    token_leeway_seconds: int = 60
    jwks_ttl_seconds: float = 300.0
    jwks_unknown_kid_cooldown_seconds: float = 30.0
