"""``bench/gateway --quick`` still runs and prints its JSON (the figures are not judged)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


def test_the_gateway_benchmark_runs_and_prints_its_figures() -> None:
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gateway" / "bench.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(completed.stdout)
    assert report["errors"] == 0
    assert report["direct_rps"] > 0
    assert report["gateway_rps"] > 0
    assert report["config"]["route"] == "GET /tasks/{id}"
