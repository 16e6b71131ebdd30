"""``bench/tracing --quick`` runs, traces its on side, prints every route (figures not judged)."""

from __future__ import annotations

import pytest

from tests.benchmarks import run_quick

pytestmark = pytest.mark.integration

ROUTES = ("get_task", "list_tasks", "create_task")


def test_the_tracing_benchmark_compares_every_route_with_tracing_off_and_on() -> None:
    report = run_quick("tracing")
    assert report["errors"] == 0, report["routes"]
    for route in ROUTES:
        figures = report["routes"][route]
        assert figures["off_rps"] > 0, route
        assert figures["on_rps"] > 0, route
        assert {"ratio", "target", "met"} <= figures.keys()
    # The traced side made spans (and dropped them): at least one per measured request.
    assert report["spans_discarded"] >= report["traced_requests_measured"] > 0
