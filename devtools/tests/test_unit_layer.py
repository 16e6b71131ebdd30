"""The unit layer stays pure: a test under tests/unit/ that asks for I/O fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CONFTEST = """
import pytest

@pytest.fixture
def database_url():
    return "sqlite+aiosqlite:///never-opened.db"

@pytest.fixture
def derived(database_url):
    return database_url
"""

TESTS = """
import pytest

def test_pure():
    assert 1 + 1 == 2

def test_asks_for_a_database(database_url):
    assert database_url

def test_asks_through_another_fixture(derived):
    assert derived

@pytest.mark.nats
def test_marked_nats():
    pass
"""


def run_pytest(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "momentum_devtools.testing.plugin",
            "-p",
            "no:cacheprovider",
            "--import-mode=importlib",
            "-o",
            "asyncio_default_fixture_loop_scope=function",
            "-q",
            "-rA",
            str(root),
        ],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )


def write_member(root: Path, directory: str) -> Path:
    tests = root / "member" / directory
    tests.mkdir(parents=True)
    (root / "member" / "tests" / "conftest.py").write_text(CONFTEST)
    (tests / "test_layer.py").write_text(TESTS)
    return tests


def test_a_unit_test_asking_for_a_database_or_nats_fails(tmp_path: Path) -> None:
    (tmp_path / "member" / "tests").mkdir(parents=True)
    write_member(tmp_path, "tests/unit")
    result = run_pytest(tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "PASSED member/tests/unit/test_layer.py::test_pure" in output
    for name, used in [
        ("test_asks_for_a_database", "uses database_url"),
        ("test_asks_through_another_fixture", "uses database_url"),
        ("test_marked_nats", "uses @pytest.mark.nats"),
    ]:
        assert f"ERROR member/tests/unit/test_layer.py::{name}" in output, output
        assert used in output
    assert "1 passed" in output
    assert "3 errors" in output


def test_the_same_tests_outside_the_unit_layer_run(tmp_path: Path) -> None:
    (tmp_path / "member" / "tests").mkdir(parents=True)
    write_member(tmp_path, "tests/integration")
    result = run_pytest(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout
