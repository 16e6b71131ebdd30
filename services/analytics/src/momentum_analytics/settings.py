"""Settings of the analytics service (environment prefix ``MOMENTUM_ANALYTICS_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from momentum_shared.settings import DatabaseSettings, RevocationSettings


class AnalyticsSettings(DatabaseSettings, RevocationSettings):
    model_config = SettingsConfigDict(env_prefix="MOMENTUM_ANALYTICS_", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./.momentum/analytics.db"
    """SQLAlchemy async URL of the analytics database"""

    consumer_enabled: bool = True
    """run the JetStream consumer inside the web process"""
    consumer_durable: str = Field(default="analytics", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    """name of the durable JetStream consumer shared by the replicas"""
    consumer_batch_size: int = Field(default=500, ge=1, le=1000)
    """most messages fetched and applied per transaction (a fetch returns what is pending)"""
    consumer_fetch_timeout_seconds: float = Field(default=1.0, gt=0)
    """how long a fetch waits for messages"""
    consumer_ack_wait_seconds: float = Field(default=30.0, gt=0)
    """JetStream redelivers a message not acked within this time"""
    consumer_max_ack_pending: int = Field(default=1000, ge=1)
    """messages in flight per consumer"""
    dead_letter_after_deliveries: int = Field(default=5, ge=1)
    """a message failing this many deliveries is dead-lettered"""
    consumer_nak_delay_seconds: float = Field(default=1.0, ge=0)
    """first redelivery delay after a failure; doubles each time"""
    # Short: a stream created just after start-up is consumed within the spec's second
    # (one cheap consumer-create request per stream and interval while it is missing).
    consumer_retry_interval_seconds: float = Field(default=0.25, gt=0)
    """pause before retrying NATS or a missing stream"""
    consumer_lag_interval_seconds: float = Field(default=2.0, gt=0)
    """how often the consumer lag metric is refreshed"""
