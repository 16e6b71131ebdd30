"""The cursor secret: refused in production unless it is a strong random value."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from momentum_tasks.settings import DEVELOPMENT_CURSOR_SECRET, TasksSettings

STRONG = "Q3c8Zt1RvYk5nWm0bLx7JpA2sHd9GfE4uCi6TqNoVwy"


@pytest.mark.parametrize("weak", ["x", "a" * 32, "short-secret", DEVELOPMENT_CURSOR_SECRET])
def test_production_refuses_a_weak_cursor_secret(weak: str) -> None:
    with pytest.raises(ValidationError, match="MOMENTUM_TASKS_CURSOR_SECRET") as refused:
        TasksSettings.model_validate({"environment": "production", "cursor_secret": weak})
    assert "secrets.token_urlsafe(32)" in str(refused.value)
    # Development and tests start with it.
    assert TasksSettings.model_validate({"environment": "development", "cursor_secret": weak})


def test_production_accepts_a_strong_cursor_secret_and_development_its_default() -> None:
    strong = TasksSettings.model_validate({"environment": "production", "cursor_secret": STRONG})
    assert strong.cursor_secret.get_secret_value() == STRONG
    assert TasksSettings(environment="development").cursor_secret.get_secret_value() == (
        DEVELOPMENT_CURSOR_SECRET
    )
