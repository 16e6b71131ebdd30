"""``bench/analytics --quick`` still runs and prints its JSON (the figures are not judged)."""

from __future__ import annotations

import os

import pytest

from tests.benchmarks import run_quick

pytestmark = pytest.mark.integration

ROUTES = {
    "weekly_report",
    "monthly_report",
    "range_report_366_days_by_week",
    "calendar",
    "goals",
    "streaks",
}
DIALECTS = ["sqlite"]
if os.environ.get("MOMENTUM_TEST_POSTGRES_URL"):
    DIALECTS.append("postgresql")


@pytest.mark.parametrize("dialect", DIALECTS)
def test_the_analytics_benchmark_measures_every_route_against_one_week_of_history(
    dialect: str,
) -> None:
    report = run_quick("analytics", "--db", dialect)
    assert report["dialect"] == dialect
    assert set(report["ratio_to_one_week_of_history"]) == ROUTES
    assert report["target"] == 1.5
    assert isinstance(report["met"], bool)
    for route in ROUTES:
        assert report[route]["median_ms"] > 0
    # The measured user has history: the answers are about something.
    assert report["sample_longest_login_streak"] > 0
