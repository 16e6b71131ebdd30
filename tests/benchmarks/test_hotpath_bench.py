"""``bench/hotpath --quick`` runs on both databases and prints its JSON (figures not judged)."""

from __future__ import annotations

import os

import pytest

from tests.benchmarks import run_quick

pytestmark = pytest.mark.integration

ROUTES = ("get_task", "list_tasks", "create_task", "weekly_report", "refresh_token")
PROCESSES = ("tasks", "analytics", "auth", "gateway")


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_the_hotpath_benchmark_runs_and_prints_every_route_and_process(db: str) -> None:
    if db == "postgresql" and not os.environ.get("MOMENTUM_TEST_POSTGRES_URL"):
        pytest.skip("MOMENTUM_TEST_POSTGRES_URL is not set")
    report = run_quick("hotpath", "--db", db)
    assert report["config"]["db"] == db
    assert report["errors"] == 0, report["routes"]
    assert report["hello_rps"] > 0
    for route in ROUTES:
        figures = report["routes"][route]
        assert figures["direct_rps"] > 0, route
        assert figures["gateway_rps"] > 0, route
        assert figures["cpu_us_per_request"] > 0, route
        assert {"ratio", "target", "met", "gateway_over_direct"} <= figures.keys()
    for name in PROCESSES:
        assert report["rss"]["processes"][name]["early_bytes"] > 0, name
    assert report["rss"]["after_requests"][1] > report["rss"]["after_requests"][0]
    assert "cpus" in report["machine"]
