"""The one-command dev stack behind ``make up``: NATS, migrations, the four apps, health waits.

Run as ``python -m momentum_devtools.devstack``. Services are started by module path, so
this library imports none of them.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from momentum_devtools.natsserver import EmbeddedNats, free_port

REPO_ROOT = Path(__file__).resolve().parents[3]

# Everything under the data dir (databases, logs, the NATS store and its credentials) is
# for this user alone: the databases hold password hashes and the sealed signing keys.
PRIVATE_UMASK = 0o077


def make_private(data_dir: Path) -> None:
    """Create ``data_dir`` (0700) if missing; make what is already in it private (0700/0600)."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    for root, dirs, files in os.walk(data_dir):
        for name in dirs:
            (Path(root) / name).chmod(0o700)
        for name in files:
            path = Path(root) / name
            if not path.is_symlink():
                path.chmod(0o600)


@dataclass(frozen=True)
class AppSpec:
    name: str
    factory: str
    port_var: str
    default_port: int
    alembic_ini: Path | None


APPS = (
    AppSpec(
        "auth",
        "momentum_auth.app:create_app",
        "MOMENTUM_AUTH_PORT",
        8001,
        REPO_ROOT / "services/auth/alembic.ini",
    ),
    AppSpec(
        "tasks",
        "momentum_tasks.app:create_app",
        "MOMENTUM_TASKS_PORT",
        8002,
        REPO_ROOT / "services/tasks/alembic.ini",
    ),
    AppSpec(
        "analytics",
        "momentum_analytics.app:create_app",
        "MOMENTUM_ANALYTICS_PORT",
        8003,
        REPO_ROOT / "services/analytics/alembic.ini",
    ),
    AppSpec("gateway", "momentum_gateway.app:create_app", "MOMENTUM_GATEWAY_PORT", 8000, None),
)
# Started and ready before the others: they fetch its JWKS and follow its revocation stream.
FIRST = "auth"


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    tail: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=40))
    reader: threading.Thread | None = None


class DevStack:
    def __init__(self, env: dict[str, str], *, echo: bool = True) -> None:
        self.env = env
        self.echo = echo
        self.data_dir = Path(env.get("MOMENTUM_DATA_DIR", ".momentum")).resolve()
        self.log_dir = self.data_dir / "logs"
        self.ports = {app.name: int(env.get(app.port_var, app.default_port)) for app in APPS}
        # The gateway's /metrics and detailed /readyz are not on its public port.
        self.metrics_port = int(env.get("MOMENTUM_GATEWAY_METRICS_PORT") or free_port())
        self.children: list[Child] = []
        self.nats: EmbeddedNats | None = None
        self.nats_url = env.get("MOMENTUM_NATS_URL", "")
        self._stopping = threading.Event()
        self._waiting_for_stream = False
        self._print_lock = threading.Lock()

    # -- configuration -------------------------------------------------------------------
    def database_url(self, name: str) -> str:
        return self.env.get(
            f"MOMENTUM_{name.upper()}_DATABASE_URL",
            f"sqlite+aiosqlite:///{self.data_dir / f'{name}.db'}",
        )

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}"

    def child_env(self, name: str) -> dict[str, str]:
        prefix = f"MOMENTUM_{name.upper()}_"
        env = dict(self.env)
        auth = f"http://127.0.0.1:{self.ports['auth']}"
        values = {
            "NATS_URL": self.nats_url,
            "JWKS_URL": f"{auth}/.well-known/jwks.json",
            "TOKEN_ISSUER": self.gateway_url,
        }
        if name == "auth":  # the issuer it puts in tokens; the others only verify it
            values["ISSUER"] = self.gateway_url
        if self.nats is not None:  # the embedded server: each program is its own user
            values.update(NATS_USER=name, NATS_PASSWORD=self.nats.passwords[name])
        if name != "gateway":
            values["DATABASE_URL"] = self.database_url(name)
        else:
            values.update(
                AUTH_URL=auth,
                TASKS_URL=f"http://127.0.0.1:{self.ports['tasks']}",
                ANALYTICS_URL=f"http://127.0.0.1:{self.ports['analytics']}",
                METRICS_PORT=str(self.metrics_port),
            )
        for key, value in values.items():
            env.setdefault(prefix + key, value)
        # uvicorn believes X-Forwarded-For from 127.0.0.1 unless told otherwise, and here every
        # local client is 127.0.0.1: the gateway is the edge and trusts no proxy; the services
        # trust the gateway, which sends the client address it resolved.
        env["FORWARDED_ALLOW_IPS"] = "" if name == "gateway" else "127.0.0.1"
        env["PYTHONUNBUFFERED"] = "1"
        return env

    # -- output --------------------------------------------------------------------------
    def say(self, message: str) -> None:
        with self._print_lock:
            sys.stdout.write(f"momentum | {message}\n")
            sys.stdout.flush()

    def _pump(self, child: Child) -> None:
        assert child.process.stdout is not None
        fd = os.open(child.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "ab") as log:
            for raw in iter(child.process.stdout.readline, b""):
                log.write(raw)
                log.flush()
                line = raw.decode("utf-8", "replace").rstrip()
                child.tail.append(line)
                if self.echo:
                    with self._print_lock:
                        sys.stdout.write(f"{child.name:>9} | {line}\n")
                        sys.stdout.flush()

    def spawn(self, name: str, argv: list[str], env: dict[str, str]) -> Child:
        self.log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        process = subprocess.Popen(
            argv,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us alone; we stop children in order
            umask=PRIVATE_UMASK,
        )
        child = Child(name, process, self.log_dir / f"{name}.log")
        child.reader = threading.Thread(target=self._pump, args=(child,), daemon=True)
        child.reader.start()
        self.children.append(child)
        return child

    # -- lifecycle -----------------------------------------------------------------------
    def start_nats(self) -> None:
        make_private(self.data_dir)
        if self.nats_url:
            self.say(f"using NATS at {self.nats_url}")
            return
        self.log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Fresh random passwords at each start; the config holding them is 0600.
        self.nats = EmbeddedNats(self.data_dir / "nats", log_file=self.log_dir / "nats.log")
        self.nats.start()
        self.nats_url = self.nats.url
        self.say(f"embedded NATS (JetStream) at {self.nats_url}, data in {self.data_dir / 'nats'}")
        self.say(f"NATS users and passwords (admin included) in {self.nats.config_file}")

    def migrate(self) -> None:
        make_private(self.data_dir)  # SQLite needs the directory; it may be new
        for app in APPS:
            if app.alembic_ini is None:
                continue
            env = self.child_env(app.name)
            result = subprocess.run(
                [sys.executable, "-m", "alembic", "-c", str(app.alembic_ini), "upgrade", "head"],
                env=env,
                capture_output=True,
                text=True,
                check=False,
                umask=PRIVATE_UMASK,
            )
            if result.returncode != 0:
                raise RuntimeError(f"migrations of {app.name} failed:\n{result.stderr[-4000:]}")
            self.say(f"migrated {app.name}")

    def start_app(self, app: AppSpec) -> Child:
        argv = [
            sys.executable,
            "-m",
            "momentum_shared.server",
            app.factory,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.ports[app.name]),
            "--no-access-log",
            "--timeout-graceful-shutdown",
            "10",
        ]
        return self.spawn(app.name, argv, self.child_env(app.name))

    def start_apps(self, timeout: float) -> None:
        """Start auth, wait until it is ready and its stream exists, then start the others.

        The others fetch auth's JWKS and follow its revocation stream, which auth's outbox
        relay creates: started together, they would log failed fetches until auth is up.
        """
        deadline = time.monotonic() + timeout
        first = [app for app in APPS if app.name == FIRST]
        rest = [app for app in APPS if app.name != FIRST]
        for app in first:
            self.start_app(app)
        self.wait_ready([app.name for app in first], deadline, timeout)
        for app in rest:
            self.start_app(app)
        self.wait_ready([app.name for app in rest], deadline, timeout)

    def _is_ready(self, name: str) -> bool:
        url = f"http://127.0.0.1:{self.ports[name]}/readyz"
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status != 200:
                    return False
                body = json.loads(response.read() or b"{}")
        except (urllib.error.URLError, OSError, ValueError):
            return False
        if name != FIRST:
            return True
        # Auth's relay reports whether it has created its stream (absent: no relay).
        checks = body.get("checks") if isinstance(body, dict) else None
        nats = checks.get("nats") if isinstance(checks, dict) else None
        if isinstance(nats, dict) and not nats.get("streams_ready", True):
            self._waiting_for_stream = True
            return False
        return True

    def wait_ready(self, names: list[str], deadline: float, timeout: float) -> None:
        pending = set(names)
        while pending:
            self.check_children()
            for name in sorted(pending):
                if self._is_ready(name):
                    pending.discard(name)
                    self.say(f"{name} ready on port {self.ports[name]}")
            if pending and time.monotonic() > deadline:
                message = f"not ready after {timeout:.0f}s: {', '.join(sorted(pending))}"
                if FIRST in pending and self._waiting_for_stream:
                    message += f" (it has not created its NATS stream; is {self.nats_url} up?)"
                raise TimeoutError(message)
            if pending:
                time.sleep(0.2)

    def check_children(self) -> None:
        for child in self.children:
            code = child.process.poll()
            if code is not None and not self._stopping.is_set():
                if child.reader is not None:
                    child.reader.join(timeout=2)
                lines = "\n".join(f"    {line}" for line in list(child.tail)[-20:])
                raise ChildDied(f"{child.name} exited with status {code}; its last lines:\n{lines}")

    def stop(self) -> None:
        self._stopping.set()
        for child in reversed(self.children):
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        for child in reversed(self.children):
            try:
                child.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
            if child.reader is not None:
                child.reader.join(timeout=2)
            if child.process.stdout is not None:
                child.process.stdout.close()
        if self.nats is not None:
            self.nats.stop()


class ChildDied(RuntimeError):
    pass


class _Stop(Exception):
    pass


def _raise_stop(_signum: int, _frame: FrameType | None) -> None:
    raise _Stop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the whole Momentum system in the foreground.")
    parser.add_argument("--ready-timeout", type=float, default=90.0)
    parser.add_argument("--quiet", action="store_true", help="do not echo the services' logs")
    parser.add_argument(
        "--free-ports",
        action="store_true",
        help="pick free ports for every app whose port variable is unset",
    )
    args = parser.parse_args(argv)
    os.umask(PRIVATE_UMASK)  # the logs this process writes, as its children's files
    env = dict(os.environ)
    if args.free_ports:
        for app in APPS:
            env.setdefault(app.port_var, str(free_port()))
    stack = DevStack(env, echo=not args.quiet)
    signal.signal(signal.SIGINT, _raise_stop)
    signal.signal(signal.SIGTERM, _raise_stop)
    try:
        stack.start_nats()
        stack.migrate()
        stack.start_apps(args.ready_timeout)
        stack.say(f"gateway metrics and readiness details: {stack.metrics_url}")
        stack.say(f"Momentum is up: {stack.gateway_url}  (Ctrl-C stops everything)")
        while True:
            stack.check_children()
            time.sleep(0.5)
    except _Stop:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.say("stopping…")
        stack.stop()
        stack.say("stopped")
        return 0
    except (ChildDied, RuntimeError, TimeoutError) as exc:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.say(str(exc))
        stack.say("stopping the others…")
        stack.stop()
        return 1


if __name__ == "__main__":
    sys.exit(main())
