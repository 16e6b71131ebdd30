"""``bench/ingest --quick`` still runs and prints its figures (they are not judged)."""

from __future__ import annotations

import pytest

from tests.benchmarks import run_quick

pytestmark = pytest.mark.integration


def test_the_ingest_benchmark_runs_and_checks_the_projection() -> None:
    report = run_quick("ingest", "--db", "sqlite")
    assert report["benchmark"] == "ingest"
    assert report["events"] == report["expected"]["events"] > 0
    assert report["analytics_events_per_s"] > 0
    assert report["raw_events_per_s"] > 0
    assert report["target"] == 0.3
    assert isinstance(report["met"], bool)
