"""The inbox retention must outlast every way a copy of a processed event can come back."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from momentum_analytics.settings import AnalyticsSettings
from momentum_shared.nats import DUPLICATE_WINDOW_SECONDS


def test_the_redelivery_horizon_is_every_delivery_with_its_ack_wait_and_pause() -> None:
    settings = AnalyticsSettings(
        consumer_ack_wait_seconds=30, dead_letter_after_deliveries=5, consumer_nak_delay_seconds=1
    )
    # Five deliveries of 30 s each, with pauses of 1, 2, 4, 8 and 16 s.
    assert settings.redelivery_horizon_seconds == 5 * 30 + 31
    assert settings.duplicate_horizon_seconds == DUPLICATE_WINDOW_SECONDS + 181


def test_the_pauses_between_redeliveries_are_capped_at_a_minute() -> None:
    settings = AnalyticsSettings(
        consumer_ack_wait_seconds=10, dead_letter_after_deliveries=10, consumer_nak_delay_seconds=1
    )
    assert settings.redelivery_horizon_seconds == 10 * 10 + (1 + 2 + 4 + 8 + 16 + 32 + 4 * 60)


def test_a_retention_shorter_than_the_duplicate_horizon_is_refused_with_the_reason() -> None:
    horizon = AnalyticsSettings().duplicate_horizon_seconds
    with pytest.raises(ValidationError) as refused:
        AnalyticsSettings(inbox_retention_seconds=int(horizon))
    message = str(refused.value)
    assert "inbox_retention_seconds" in message
    assert "duplicate window" in message
    assert "redelivery horizon" in message
    assert AnalyticsSettings(inbox_retention_seconds=int(horizon) + 1).inbox_retention_seconds


def test_a_longer_ack_wait_needs_a_longer_retention() -> None:
    with pytest.raises(ValidationError):
        AnalyticsSettings(inbox_retention_seconds=3600, consumer_ack_wait_seconds=3600)


def test_the_default_retention_is_a_week() -> None:
    assert AnalyticsSettings().inbox_retention_seconds == 7 * 24 * 3600
