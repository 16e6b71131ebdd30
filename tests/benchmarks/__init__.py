"""Every benchmark's ``--quick`` run, so that none of them rots (figures are not judged)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def run_quick(name: str, *arguments: str, timeout: float = 300) -> dict[str, Any]:
    """``bench/<name>/bench.py --quick``: its exit status must be 0; its JSON is returned."""
    completed = subprocess.run(
        [sys.executable, str(ROOT / "bench" / name / "bench.py"), "--quick", *arguments],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report: dict[str, Any] = json.loads(completed.stdout)
    return report
