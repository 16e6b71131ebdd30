"""Settings of the analytics service (environment prefix ``MOMENTUM_ANALYTICS_``)."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from momentum_shared.nats import DUPLICATE_WINDOW_SECONDS
from momentum_shared.settings import DatabaseSettings, PruneSettings, RevocationSettings

DAY = 24 * 3600
# The consumer's longest pause before redelivering a failed message (consumer.py).
MAX_REDELIVERY_DELAY_SECONDS = 60.0


class AnalyticsSettings(DatabaseSettings, PruneSettings, RevocationSettings):
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
    inbox_retention_seconds: int = Field(default=7 * DAY, ge=1)
    """how long the inbox remembers a processed event id (duplicates arriving later would be
    applied again); longer than the stream's duplicate window plus the redelivery horizon"""

    @property
    def redelivery_horizon_seconds(self) -> float:
        """The longest one message keeps being delivered: ``dead_letter_after_deliveries``
        deliveries, each up to an ack wait plus the pause before the next (capped)."""
        deliveries = self.dead_letter_after_deliveries
        pauses = sum(
            min(self.consumer_nak_delay_seconds * 2 ** (delivery - 1), MAX_REDELIVERY_DELAY_SECONDS)
            for delivery in range(1, deliveries + 1)
        )
        return float(deliveries * self.consumer_ack_wait_seconds + pauses)

    @property
    def duplicate_horizon_seconds(self) -> float:
        """How long after processing an event a copy of it may still arrive: a re-publish
        after JetStream's duplicate window, then redelivered for the whole horizon."""
        return DUPLICATE_WINDOW_SECONDS + self.redelivery_horizon_seconds

    @model_validator(mode="after")
    def _inbox_outlives_duplicates(self) -> Self:
        horizon = self.duplicate_horizon_seconds
        if self.inbox_retention_seconds <= horizon:
            raise ValueError(
                f"inbox_retention_seconds ({self.inbox_retention_seconds}) must be longer than"
                f" the stream's duplicate window ({DUPLICATE_WINDOW_SECONDS} s) plus the"
                f" redelivery horizon ({self.redelivery_horizon_seconds:g} s:"
                " dead_letter_after_deliveries x (consumer_ack_wait_seconds + the redelivery"
                f" delay)), {horizon:g} s in all"
            )
        return self
