"""The committed OpenAPI document of analytics (services/analytics/openapi.json) matches code."""

from __future__ import annotations

from pathlib import Path

from momentum_analytics.app import create_app
from momentum_analytics.settings import AnalyticsSettings
from momentum_devtools.testing.specs import assert_openapi_current

DOCUMENT = Path(__file__).resolve().parents[1] / "openapi.json"
CONTRACT_ROUTES = {("get", "/analytics/streaks"), ("get", "/analytics/reports/weekly")}


def test_the_committed_document_is_current(tmp_path: Path) -> None:
    settings = AnalyticsSettings.model_validate(
        {"database_url": f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}", "log_json": False}
    )
    paths = assert_openapi_current(create_app(settings), DOCUMENT, CONTRACT_ROUTES)
    weekly = paths["/analytics/reports/weekly"]["get"]
    assert {"401", "403", "422"} <= set(weekly["responses"])
