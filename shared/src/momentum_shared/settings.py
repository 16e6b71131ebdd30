"""Settings base shared by every Momentum service (pydantic-settings)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

Environment = Literal["development", "test", "production"]


class MomentumSettings(BaseSettings):
    """Fields every service has; each service subclasses with its own ``env_prefix``."""

    # Attribute docstrings become field descriptions (docs/configuration.md is built from them).
    model_config = SettingsConfigDict(extra="ignore", env_file=None, use_attribute_docstrings=True)

    environment: Environment = Field(
        default="development",
        description="development, test or production; development secrets refuse production",
    )
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR")
    log_json: bool = Field(default=True, description="one JSON object per log line")
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    """largest request body accepted, counted while it streams in (413 above)"""
    http_header_timeout_seconds: float = Field(default=10.0, gt=0)
    """a request's line and headers must arrive within this time (408 and close after)"""
    http_body_timeout_seconds: float = Field(default=30.0, gt=0)
    """a request's body must arrive within this time after its headers (408 and close after)"""
    http_keep_alive_timeout_seconds: float = Field(default=5.0, gt=0)
    """an idle keep-alive connection is closed after this time"""
    http_max_header_bytes: int = Field(default=64 * 1024, ge=1024)
    """largest request line and header block accepted (431 above)"""
    http_max_header_fields: int = Field(default=100, ge=1)
    """most header fields accepted in one request (431 above)"""
    http_max_requests_per_connection: int = Field(default=10_000, ge=1)
    """requests served on one connection before the server closes it"""

    @property
    def is_development(self) -> bool:
        return self.environment in ("development", "test")


class DatabaseSettings(MomentumSettings):
    """A service that owns a database."""

    database_url: str = Field(
        default="sqlite+aiosqlite:///./.momentum/service.db",
        description="SQLAlchemy async URL (sqlite+aiosqlite:///… or postgresql+asyncpg://…)",
    )
    database_pool_size: int = Field(
        default=10,
        ge=1,
        description="PostgreSQL connections kept per process (as many again may overflow)",
    )


class NatsSettings(BaseSettings):
    """Connection to NATS JetStream (mixed into services that publish or consume)."""

    nats_url: str = Field(default="nats://127.0.0.1:4222", description="NATS server URL")
    nats_connect_timeout: float = Field(
        default=2.0, gt=0, description="seconds per connect attempt"
    )
    nats_stream_replicas: int = Field(
        default=1,
        ge=1,
        le=5,
        description="replicas of the streams this service creates (3 on a production cluster)",
    )


class TokenVerificationSettings(BaseSettings):
    """How a service verifies access tokens issued by auth."""

    jwks_url: str = Field(
        default="http://127.0.0.1:8001/.well-known/jwks.json", description="auth's JWKS"
    )
    token_issuer: str = Field(
        default="http://127.0.0.1:8000", description="the `iss` every access token must carry"
    )
    token_audience: str = Field(
        default="momentum-api", description="the `aud` every access token must carry"
    )
    token_algorithms: tuple[str, ...] = Field(
        default=("RS256",), description="accepted signature algorithms (pinned)"
    )
    token_leeway_seconds: int = Field(
        default=60, ge=0, le=300, description="clock skew tolerated on exp, nbf and iat"
    )
    jwks_ttl_seconds: float = Field(
        default=300.0, gt=0, description="how long fetched keys are used before a refresh"
    )
    jwks_unknown_kid_cooldown_seconds: float = Field(
        default=30.0,
        ge=0,
        description="at most one refetch per this many seconds on an unknown kid",
    )
