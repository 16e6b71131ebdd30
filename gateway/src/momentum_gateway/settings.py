"""Settings of the gateway (environment prefix ``MOMENTUM_GATEWAY_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from momentum_shared.settings import MomentumSettings, RevocationSettings


class GatewaySettings(MomentumSettings, RevocationSettings):
    model_config = SettingsConfigDict(env_prefix="MOMENTUM_GATEWAY_", extra="ignore")

    auth_url: str = "http://127.0.0.1:8001"
    """base URL of the auth service"""
    tasks_url: str = "http://127.0.0.1:8002"
    """base URL of the tasks service"""
    analytics_url: str = "http://127.0.0.1:8003"
    """base URL of the analytics service"""

    # Proxying.
    max_body_bytes: int = Field(default=1024 * 1024, ge=0)
    """largest request body proxied (413 above)"""
    body_timeout_seconds: float = Field(default=10.0, gt=0)
    """seconds to receive the whole request body, before any upstream is asked (408 after)"""
    upstream_connect_timeout_seconds: float = Field(default=2.0, gt=0)
    """seconds to connect to an upstream before a 503"""
    upstream_timeout_seconds: float = Field(default=30.0, gt=0)
    """seconds an upstream may stay silent before a 504"""
    upstream_pool_size: int = Field(default=256, ge=1)
    """keep-alive connections per upstream service"""
    upstream_pool_timeout_seconds: float = Field(default=2.0, gt=0)
    """seconds a request waits for a free upstream connection before a 503 with Retry-After"""
    upstream_keepalive_seconds: float = Field(default=30.0, gt=0)
    """idle keep-alive connections are closed after this long"""
    retry_after_seconds: int = Field(default=5, ge=1)
    """Retry-After sent with a 503"""

    # Rate limits (token buckets per replica); a rate of 0 switches that limit off.
    rate_limit_user_per_second: float = Field(default=100.0, ge=0)
    """token-bucket rate per user (sub); 0 switches it off"""
    rate_limit_user_burst: int = Field(default=200, ge=1)
    """token-bucket size per user"""
    rate_limit_address_per_second: float = Field(default=5.0, ge=0)
    """token-bucket rate per client address, on the public auth routes; 0 switches it off"""
    rate_limit_address_burst: int = Field(default=50, ge=1)
    """token-bucket size per client address"""
    rate_limit_max_keys: int = Field(default=100_000, ge=100)
    """users and addresses tracked at most per replica"""
    max_in_flight_per_user: int = Field(default=16, ge=0)
    """requests in flight at once per user (sub) and replica, 429 above; 0 switches it off"""
    max_in_flight_per_address: int = Field(default=32, ge=0)
    """requests in flight at once per client address and replica, 429 above; 0: off"""

    # The internal port: /metrics and the detailed /readyz are not served on the public one.
    metrics_host: str = "127.0.0.1"
    """address of the internal listener for /metrics and the detailed /readyz"""
    metrics_port: int = Field(default=9100, ge=0, le=65535)
    """port of the internal listener for /metrics and the detailed /readyz (0: any free port)"""

    # The merged OpenAPI document.
    openapi_cache_seconds: float = Field(default=60.0, ge=0)
    """how long the merged OpenAPI document is cached"""

    def upstreams(self) -> dict[str, str]:
        """Service name -> base URL: the only place the gateway learns where services live."""
        return {
            "auth": self.auth_url.rstrip("/"),
            "tasks": self.tasks_url.rstrip("/"),
            "analytics": self.analytics_url.rstrip("/"),
        }
