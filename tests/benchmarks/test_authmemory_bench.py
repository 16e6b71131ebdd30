"""``bench/authmemory --quick`` still runs and prints its JSON (the figures are not judged)."""

from __future__ import annotations

import pytest

from tests.benchmarks import run_quick

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_the_auth_memory_benchmark_signs_in_a_burst_and_reports_the_peak(dialect: str) -> None:
    report = run_quick("authmemory", "--db", dialect)
    [run] = report["runs"]
    assert run["workers"] == 1
    assert run["statuses"].get("200", 0) > 0
    assert run["peak_rss_mib"] >= run["rss_after_warm_up_mib"] > 0
