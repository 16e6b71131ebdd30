"""The whole system as processes, started by the same launcher as ``make up``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from momentum_devtools.natsserver import ROLES, EmbeddedNats, free_port
from momentum_devtools.testing.databases import require_postgres
from momentum_devtools.testing.natsusers import NATS_PASSWORDS
from momentum_devtools.testing.resources import NatsServer, asyncpg_url, created_database

SERVICES = ("gateway", "auth", "tasks", "analytics")


@dataclass
class Stack:
    process: subprocess.Popen[bytes]
    ports: dict[str, int]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    def url(self, name: str = "gateway") -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGINT, timeout: float = 40.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError):
        return 0


def port_is_free(port: int) -> bool:
    """Nothing listens on ``port`` (connections in TIME_WAIT may remain, as after any server)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def start_stack(
    tmp_path: Path,
    nats_url: str,
    database_urls: dict[str, str],
    *,
    timeout: float = 120.0,
    env: dict[str, str] | None = None,
) -> Stack:
    ports = {name: free_port() for name in SERVICES}
    env = {**os.environ, **(env or {})}
    env.update(
        MOMENTUM_DATA_DIR=str(tmp_path / "data"),
        MOMENTUM_NATS_URL=nats_url,
        **{f"MOMENTUM_{name.upper()}_PORT": str(port) for name, port in ports.items()},
        **{f"MOMENTUM_{name.upper()}_DATABASE_URL": url for name, url in database_urls.items()},
        # Each program connects to NATS as its own user, with its production permissions.
        **{f"MOMENTUM_{name.upper()}_NATS_USER": name for name in ROLES},
        **{f"MOMENTUM_{name.upper()}_NATS_PASSWORD": NATS_PASSWORDS[name] for name in ROLES},
    )
    log_path = tmp_path / "stack.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "momentum_devtools.devstack", "--ready-timeout", str(timeout)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    stack = Stack(process, ports, log_path, env)
    deadline = time.monotonic() + timeout + 10
    while "Momentum is up" not in stack.output():
        if process.poll() is not None:
            pytest.fail(f"the stack exited with {process.returncode}:\n{stack.output()[-6000:]}")
        if time.monotonic() > deadline:
            stack.stop(signal.SIGTERM)
            pytest.fail(f"the stack did not come up:\n{stack.output()[-6000:]}")
        time.sleep(0.25)
    return stack


@pytest.fixture(scope="module")
def stack_resources(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_admin_url: str | None,
    nats_session_server: NatsServer,
    run_id: str,
) -> Iterator[tuple[Path, str, dict[str, str]]]:
    """Three private PostgreSQL databases and a private NATS for one stack."""
    require_postgres(postgres_admin_url)
    assert postgres_admin_url is not None
    tmp_path = tmp_path_factory.mktemp("stack")
    with ExitStack() as resources:
        urls = {
            name: asyncpg_url(
                resources.enter_context(
                    created_database(
                        postgres_admin_url, f"momentum_it_{name}_{run_id}_{uuid.uuid4().hex[:6]}"
                    )
                )
            )
            for name in ("auth", "tasks", "analytics")
        }
        nats_url = nats_session_server.url
        if nats_url is None:
            server = EmbeddedNats(tmp_path / "nats", passwords=NATS_PASSWORDS)
            nats_url = resources.enter_context(server).url
        yield tmp_path, nats_url, urls


@pytest.fixture(scope="module")
def stack(stack_resources: tuple[Path, str, dict[str, str]]) -> Iterator[Stack]:
    tmp_path, nats_url, urls = stack_resources
    running = start_stack(tmp_path, nats_url, urls)
    try:
        yield running
    finally:
        running.stop()
