"""Settings of the gateway (environment prefix ``MOMENTUM_GATEWAY_``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from momentum_shared.settings import MomentumSettings, NatsSettings, TokenVerificationSettings


class GatewaySettings(MomentumSettings, NatsSettings, TokenVerificationSettings):
    model_config = SettingsConfigDict(env_prefix="MOMENTUM_GATEWAY_", extra="ignore")

    auth_url: str = "http://127.0.0.1:8001"
    tasks_url: str = "http://127.0.0.1:8002"
    analytics_url: str = "http://127.0.0.1:8003"
