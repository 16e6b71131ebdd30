"""The launcher behind ``make up`` brings every service to ready and stops them all cleanly."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.conftest import SERVICES, Stack, port_is_free, start_stack, status_of

pytestmark = pytest.mark.integration


def test_every_service_is_ready(stack: Stack) -> None:
    for name in SERVICES:
        assert status_of(f"{stack.url(name)}/readyz") == 200, name
        assert status_of(f"{stack.url(name)}/healthz") == 200, name
        # The gateway is the public entry: its metrics are on the internal port only.
        expected = 404 if name == "gateway" else 200
        assert status_of(f"{stack.url(name)}/metrics") == expected, name
    found = re.search(r"gateway metrics and readiness details: (\S+)", stack.output())
    assert found, stack.output()
    assert status_of(f"{found.group(1)}/metrics") == 200
    assert status_of(f"{found.group(1)}/readyz") == 200


def test_the_gateway_url_is_printed(stack: Stack) -> None:
    assert f"Momentum is up: {stack.url()}" in stack.output()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_every_child_and_frees_every_port(
    tmp_path: Path,
    stack_resources: tuple[Path, str, dict[str, str]],
    sig: signal.Signals,
) -> None:
    _, nats_url, urls = stack_resources
    # Separate databases are not needed: a second stack against the same ones is a replica.
    running = start_stack(tmp_path, nats_url, urls)
    children = _children(running.process.pid)
    assert len(children) >= 4
    assert running.stop(sig) == 0
    for port in running.ports.values():
        assert port_is_free(port)
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in children if _alive(pid)]
    assert "stopped" in running.output()


def test_a_dying_child_is_named_and_the_rest_are_stopped(
    tmp_path: Path, stack_resources: tuple[Path, str, dict[str, str]]
) -> None:
    _, nats_url, urls = stack_resources
    running = start_stack(tmp_path, nats_url, urls)
    children = _children(running.process.pid)
    tasks_pid = next(pid for pid in children if "momentum_tasks" in _cmdline(pid))
    subprocess.run(["kill", "-KILL", str(tasks_pid)], check=True)
    assert running.process.wait(timeout=40) == 1
    output = running.output()
    assert "tasks exited with status" in output
    for port in running.ports.values():
        assert port_is_free(port)


def _children(pid: int) -> list[int]:
    out = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False
    ).stdout
    return [int(p) for p in out.split()]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().split()[2] != "Z"
    except OSError:
        return False


def test_launcher_help_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "momentum_devtools.devstack", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--ready-timeout" in result.stdout
