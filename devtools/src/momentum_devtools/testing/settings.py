"""Settings of a service under test: its database, nothing running beside it unless asked."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic_settings import BaseSettings

S = TypeVar("S", bound=BaseSettings)

TEST_DEFAULTS: dict[str, Any] = {
    "environment": "test",
    "log_json": False,
    "outbox_relay_enabled": False,
    "nats_url": "nats://127.0.0.1:1",  # nothing listens: a test that needs NATS passes its own
}
"""What every service's tests start from; the overrides of a test win."""


def make_settings(settings_type: type[S], database_url: str, /, **overrides: Any) -> S:
    """``settings_type`` on ``database_url`` with :data:`TEST_DEFAULTS` and ``overrides``."""
    return settings_type.model_validate(
        {"database_url": database_url, **TEST_DEFAULTS, **overrides}
    )
