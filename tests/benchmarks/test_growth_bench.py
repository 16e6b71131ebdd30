"""``bench/growth --quick`` still runs and prints its JSON (the figures are not judged)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration

DIALECTS = ["sqlite"]
if os.environ.get("MOMENTUM_TEST_POSTGRES_URL"):
    DIALECTS.append("postgresql")


@pytest.mark.parametrize("dialect", DIALECTS)
def test_the_growth_benchmark_runs_and_prints_its_figures(dialect: str) -> None:
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "growth" / "bench.py"), "--quick", "--db", dialect],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(completed.stdout)
    assert report["database"] == dialect
    assert report["errors"] == 0
    for side in ("tasks_page_1", "tasks_deep_page", "weekly_one_week", "weekly_long_history"):
        assert report["figures"][side]["rps"] > 0
    targets = report["targets"]
    assert targets["monthly_long_history_vs_one_week"] == "not built"
    for name in ("tasks_deep_page_vs_page_1", "weekly_long_history_vs_one_week", "weekly_vs_hello"):
        assert isinstance(targets[name]["met"], bool)
