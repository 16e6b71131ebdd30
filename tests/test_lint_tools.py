"""``make lint`` needs nothing beyond ``make sync``: its tools are wheels among the dev deps."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_the_workspaces_kubectl_renders_each_overlay(overlay: str) -> None:
    # deploy/validate renders with this kubectl, not with one that may be on PATH.
    result = subprocess.run(
        [str(VENV_BIN / "kubectl"), "kustomize", f"deploy/k8s/overlays/{overlay}"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "kind: Deployment" in result.stdout
    assert '"$KUBECTL" kustomize' in (REPO_ROOT / "deploy/validate").read_text()


def test_hadolint_is_in_the_workspace() -> None:
    result = subprocess.run(
        [str(VENV_BIN / "hadolint"), "--version"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
