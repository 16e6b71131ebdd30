"""``bench/gateway --quick`` still runs and prints its JSON (the figures are not judged)."""

from __future__ import annotations

import pytest

from tests.benchmarks import run_quick

pytestmark = pytest.mark.integration


def test_the_gateway_benchmark_runs_and_prints_its_figures() -> None:
    report = run_quick("gateway")
    assert report["errors"] == 0
    assert report["direct_rps"] > 0
    assert report["gateway_rps"] > 0
    assert report["config"]["route"] == "GET /tasks/{id}"
