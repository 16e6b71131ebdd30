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
    for side in ("tasks_page_1", "tasks_deep_page", "weekly_one_week", "weekly_long_history"):
        assert report["figures"][side]["rps"] > 0
    targets = report["targets"]
    assert targets["monthly_long_history_vs_one_week"] == "not built"
    for name in ("tasks_deep_page_vs_page_1", "weekly_long_history_vs_one_week", "weekly_vs_hello"):
        assert isinstance(targets[name]["met"], bool)
