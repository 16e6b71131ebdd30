"""The committed OpenAPI document of analytics (services/analytics/openapi.json) matches code."""

from __future__ import annotations

import json
import os
from pathlib import Path

from momentum_analytics.app import create_app
from momentum_analytics.settings import AnalyticsSettings

DOCUMENT = Path(__file__).resolve().parents[1] / "openapi.json"
CONTRACT_ROUTES = {("get", "/analytics/streaks"), ("get", "/analytics/reports/weekly")}


def test_the_committed_document_is_current(tmp_path: Path) -> None:
    settings = AnalyticsSettings.model_validate(
        {"database_url": f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}", "log_json": False}
    )
    current = json.dumps(create_app(settings).openapi(), indent=2, sort_keys=True) + "\n"
    if os.environ.get("MOMENTUM_WRITE_SPECS") == "1":
        DOCUMENT.write_text(current)
    assert DOCUMENT.read_text() == current, (
        "services/analytics/openapi.json is stale: rerun this test with MOMENTUM_WRITE_SPECS=1"
    )
    paths = json.loads(current)["paths"]
    routes = {(method, path) for path, item in paths.items() for method in item}
    assert routes >= CONTRACT_ROUTES
    for method, path in CONTRACT_ROUTES:
        assert paths[path][method]["description"]
    weekly = paths["/analytics/reports/weekly"]["get"]
    assert {"401", "403", "422"} <= set(weekly["responses"])
