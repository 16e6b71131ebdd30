"""``bench/visible --quick`` runs on both databases and prints its JSON (figures not judged)."""

from __future__ import annotations

import os

import pytest

from tests.benchmarks import run_quick

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_the_visible_benchmark_sees_every_completion_in_the_weekly_report(db: str) -> None:
    if db == "postgresql" and not os.environ.get("MOMENTUM_TEST_POSTGRES_URL"):
        pytest.skip("MOMENTUM_TEST_POSTGRES_URL is not set")
    report = run_quick("visible", "--db", db)
    assert report["benchmark"] == "visible"
    assert report["db"] == db
    assert report["samples"] > 0
    assert report["missed"] == 0
    assert report["p50_ms"] <= report["p99_ms"] <= report["max_ms"]
    assert report["background_writes"]["done"] > 0
    assert report["background_writes"]["errors"] == 0
    for stage in ("on_nats_ms", "consumer_receive_ms"):
        assert report["baseline"][stage]["samples"] == report["samples"], stage
    assert report["target"] == {"p50_ms": 30.0, "p99_ms": 100.0}
    assert isinstance(report["met"], bool)
