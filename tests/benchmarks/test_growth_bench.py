"""``bench/growth --quick`` still runs and prints its JSON (the figures are not judged)."""

from __future__ import annotations

import os

import pytest

from tests.benchmarks import run_quick

pytestmark = pytest.mark.integration

DIALECTS = ["sqlite"]
if os.environ.get("MOMENTUM_TEST_POSTGRES_URL"):
    DIALECTS.append("postgresql")


@pytest.mark.parametrize("dialect", DIALECTS)
def test_the_growth_benchmark_runs_and_prints_its_figures(dialect: str) -> None:
    report = run_quick("growth", "--db", dialect)
    assert report["database"] == dialect
    assert report["errors"] == 0
    sides = (
        "tasks_page_1",
        "tasks_deep_page",
        "tasks_search_page_1",
        "weekly_one_week",
        "weekly_long_history",
        "monthly_one_week",
        "monthly_long_history",
    )
    for side in sides:
        assert report["figures"][side]["rps"] > 0
    assert report["config"]["search_matches_on_page_1"] > 0
    targets = report["targets"]
    for name in (
        "tasks_deep_page_vs_page_1",
        "tasks_search_vs_page_1",
        "weekly_long_history_vs_one_week",
        "monthly_long_history_vs_one_week",
        "weekly_vs_hello",
    ):
        assert isinstance(targets[name]["met"], bool)
