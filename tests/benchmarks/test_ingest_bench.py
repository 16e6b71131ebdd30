"""``bench/ingest --quick`` still runs and prints its figures (they are not judged)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


def test_the_ingest_benchmark_runs_and_checks_the_projection() -> None:
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "ingest" / "bench.py"), "--quick", "--db", "sqlite"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(completed.stdout)
    assert report["benchmark"] == "ingest"
    assert report["events"] == report["expected"]["events"] > 0
    assert report["analytics_events_per_s"] > 0
    assert report["raw_events_per_s"] > 0
    assert report["target"] == 0.3
    assert isinstance(report["met"], bool)
