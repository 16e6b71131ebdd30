"""Settings of the gateway (environment prefix ``MOMENTUM_GATEWAY_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from momentum_shared.settings import MomentumSettings, NatsSettings, TokenVerificationSettings


class GatewaySettings(MomentumSettings, NatsSettings, TokenVerificationSettings):
    model_config = SettingsConfigDict(env_prefix="MOMENTUM_GATEWAY_", extra="ignore")

    auth_url: str = "http://127.0.0.1:8001"
    tasks_url: str = "http://127.0.0.1:8002"
    analytics_url: str = "http://127.0.0.1:8003"

    # Proxying.
    max_body_bytes: int = Field(default=1024 * 1024, ge=0)
    upstream_connect_timeout: float = Field(default=2.0, gt=0)
    upstream_timeout: float = Field(
        default=30.0, gt=0, description="seconds an upstream may stay silent before a 504"
    )
    upstream_pool_size: int = Field(
        default=256, ge=1, description="keep-alive connections per upstream service"
    )
    upstream_keepalive_seconds: float = Field(default=30.0, gt=0)
    retry_after_seconds: int = Field(default=5, ge=1)

    # Rate limits (token buckets per replica); a rate of 0 switches that limit off.
    rate_limit_user_per_second: float = Field(default=100.0, ge=0)
    rate_limit_user_burst: int = Field(default=200, ge=1)
    rate_limit_address_per_second: float = Field(
        default=5.0, ge=0, description="per client address, on the public auth routes"
    )
    rate_limit_address_burst: int = Field(default=50, ge=1)
    rate_limit_max_keys: int = Field(default=100_000, ge=100)

    # Session revocation (auth.session.revoked on AUTH_EVENTS).
    revocation_enabled: bool = True
    revocation_retry_seconds: float = Field(default=1.0, gt=0)
    revocation_heartbeat_seconds: float = Field(default=2.0, gt=0)

    # The merged OpenAPI document.
    openapi_cache_seconds: float = Field(default=60.0, ge=0)

    def upstreams(self) -> dict[str, str]:
        """Service name -> base URL: the only place the gateway learns where services live."""
        return {
            "auth": self.auth_url.rstrip("/"),
            "tasks": self.tasks_url.rstrip("/"),
            "analytics": self.analytics_url.rstrip("/"),
        }
