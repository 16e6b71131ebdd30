"""What every benchmark under ``bench/`` shares: servers on free ports, load, CPU, statistics.

A benchmark starts what it needs on 127.0.0.1 (uvicorn processes, an embedded NATS, a JWKS
served over HTTP, a database of its own), measures its baseline in the same run, alternates
rounds so that the machine's drift hits both sides, and prints one JSON object. ``--quick``
runs every step with tiny counts so that ``make test`` proves the benchmark still runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from momentum_devtools.natsserver import free_port

ROOT = Path(__file__).resolve().parents[3]
VENV_BIN = Path(sys.executable).parent
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DIALECTS = ("sqlite", "postgresql")

__all__ = [
    "DIALECTS",
    "ROOT",
    "JwksServer",
    "Load",
    "MomentumServer",
    "Result",
    "Uvicorn",
    "alternate",
    "can_pin",
    "cpu_seconds",
    "database_url",
    "emit",
    "find_wrk",
    "free_port",
    "log",
    "machine",
    "median",
    "pinned",
    "ratio",
    "request_json",
    "rss_bytes",
    "run_load",
    "standard_arguments",
    "workdir",
]


def log(message: str) -> None:
    """Progress goes to stderr: stdout carries only the JSON result."""
    sys.stderr.write(f"[bench] {message}\n")
    sys.stderr.flush()


def emit(report: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()


def standard_arguments(parser: argparse.ArgumentParser, *, db: bool = True) -> None:
    """``--quick`` (tiny counts, for ``make test``) and, where a database is used, ``--db``."""
    parser.add_argument(
        "--quick",
        action="store_true",
        help="run every step with tiny counts (make test runs this: it proves the benchmark"
        " runs, its figures mean nothing)",
    )
    if db:
        parser.add_argument(
            "--db",
            choices=DIALECTS,
            default=os.environ.get("BENCH_DB", "sqlite"),
            help="the services' database (default sqlite; BENCH_DB sets it too)",
        )


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


def ratio(value: float, baseline: float) -> float | None:
    return round(value / baseline, 3) if baseline else None


# --- processes ------------------------------------------------------------------------------


def cpu_seconds(root_pid: int) -> float:
    """User + system CPU time of a process and its descendants, from /proc (Linux only)."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    children: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        children.setdefault(int(fields[1]), []).append(pid)
        times[pid] = (int(fields[11]) + int(fields[12])) / ticks
    total, stack = 0.0, [root_pid]
    while stack:
        pid = stack.pop()
        total += times.get(pid, 0.0)
        stack.extend(children.get(pid, []))
    return total


def rss_bytes(pid: int) -> int:
    """Resident set size of one process, from /proc (0 where there is none)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def pinned(cpus: str | None) -> list[str]:
    """A ``taskset`` prefix placing a process on ``cpus`` (nothing when unpinned)."""
    if not cpus:
        return []
    if shutil.which("taskset") is None:
        raise RuntimeError("pinning needs taskset (util-linux)")
    return ["taskset", "-c", cpus]


def can_pin() -> bool:
    return shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2


class Uvicorn:
    """A uvicorn process (its own session, so it and its workers stop together).

    The flags are the baseline's: uvloop, httptools, access log off, one worker unless told.
    """

    def __init__(
        self,
        name: str,
        factory: str,
        *,
        port: int | None = None,
        workers: int = 1,
        env: dict[str, str] | None = None,
        logdir: Path,
        cpus: str | None = None,
        app_dir: Path | None = None,
    ) -> None:
        self.name = name
        self.port = port or free_port()
        self.log_path = logdir / f"{name}.log"
        command = [
            *pinned(cpus),
            str(VENV_BIN / "uvicorn"),
            factory,
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(workers),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
            "--no-proxy-headers",
            "--backlog",
            "2048",
        ]
        if app_dir is not None:
            command += ["--app-dir", str(app_dir)]
        self.log_file = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            command,
            env={**os.environ, **(env or {})},
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=ROOT,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, path: str = "/readyz", timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log_path.read_text()[-3000:]}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.url}{path}", timeout=2) as response,
            ):
                if response.status == 200:
                    return
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} not ready:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log_file.close()


class MomentumServer(Uvicorn):
    """A program served the way Momentum serves it: ``python -m momentum_shared.server``.

    uvicorn with httptools, uvloop (uvicorn's ``auto`` loop), access log off and the read
    limits of the program's settings (``LimitedHttpToolsProtocol``), one process.
    ``tree`` serves the program from another checkout of Momentum (its own ``.venv``), e.g.
    a build from before a change, to measure the change against it in the same run.
    """

    def __init__(
        self,
        name: str,
        factory: str,
        *,
        port: int | None = None,
        env: dict[str, str] | None = None,
        logdir: Path,
        cpus: str | None = None,
        tree: Path | None = None,
    ) -> None:
        self.name = name
        self.port = port or free_port()
        self.log_path = logdir / f"{name}.log"
        command = [
            *pinned(cpus),
            str(tree / ".venv" / "bin" / "python") if tree is not None else sys.executable,
            "-m",
            "momentum_shared.server",
            factory,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--no-access-log",
            "--timeout-graceful-shutdown",
            "5",
        ]
        self.log_file = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            command,
            env={**os.environ, **(env or {})},
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=tree or ROOT,
        )


class JwksServer:
    """A small real HTTP server publishing an issuer's JWKS, as auth would."""

    def __init__(self, document: dict[str, Any]) -> None:
        body = json.dumps(document).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/.well-known/jwks.json"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@contextlib.contextmanager
def database_url(dialect: str, service: str, workdir: Path) -> Iterator[str]:
    """An empty database of the benchmark's own (SQLite file, or a fresh PostgreSQL database
    on ``BENCH_POSTGRES_URL``/``MOMENTUM_TEST_POSTGRES_URL``), dropped afterwards."""
    if dialect == "sqlite":
        yield f"sqlite+aiosqlite:///{workdir / f'{service}.db'}"
        return
    from momentum_devtools.testing.resources import asyncpg_url, created_database

    admin = os.environ.get("BENCH_POSTGRES_URL") or os.environ.get(
        "MOMENTUM_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL
    )
    with created_database(admin, f"momentum_bench_{service}_{uuid.uuid4().hex[:10]}") as url:
        yield asyncpg_url(url)


@contextlib.contextmanager
def workdir(prefix: str = "momentum-bench-") -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# --- requests and load ----------------------------------------------------------------------


def request_json(
    method: str,
    url: str,
    token: str | None = None,
    body: Any = None,
    *,
    form: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One blocking request (set-up steps, not load); JSON or form body; JSON answer."""
    import urllib.error
    import urllib.parse

    data: bytes | None = None
    request_headers = dict(headers or {})
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        request_headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif body is not None:
        data = json.dumps(body).encode()
        request_headers["Content-Type"] = "application/json"
    if token is not None:
        request_headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, method=method, headers=request_headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


@dataclass
class Load:
    """What one load round sends: the same request over and over, or one built per request.

    ``next_request`` (optional) returns ``(url, body)`` for each request, e.g. a fresh
    refresh token or a fresh idempotency key; otherwise ``url`` and ``body`` are reused.
    ``script`` (optional, wrk only) is Lua appended to the generated wrk script: it may
    define ``request``/``response`` (a request built per request by wrk itself, a response
    read, ``wrk.thread:stop()`` after a count); with it, ``run_load``'s ``duration`` is a cap.
    """

    url: str
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    expect: tuple[int, ...] = (200,)
    next_request: Callable[[], tuple[str, bytes | None]] | None = None
    script: str | None = None


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    # CPU seconds each watched process tree used during the run (Linux /proc; 0 elsewhere).
    cpu: dict[str, float] = field(default_factory=dict)

    def cpu_us_per_request(self, name: str) -> float:
        return round(self.cpu.get(name, 0.0) / self.requests * 1e6, 1) if self.requests else 0.0


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if match is None:
        raise ValueError(f"unparsable latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


# wrk and the LuaJIT it links, from Debian's archive at pinned versions, unpacked into
# .tools/deb/ on first use when no wrk is on PATH (``apt-get download`` needs no root and
# ``dpkg-deb -x`` installs nothing), the way deploy/validate provisions promtool.
WRK_PACKAGES = (("wrk", "4.1.0-3+b2"), ("libluajit2-5.1-2", "2.1-20230119-1"))
_WRK_DIR = ROOT / ".tools" / "deb" / "wrk-4.1.0-3+b2"


@dataclass(frozen=True)
class Wrk:
    """How to run wrk: its path and the environment it needs (a library path when unpacked)."""

    path: str
    env: dict[str, str] | None = None


def _unpacked_wrk() -> Wrk:
    binary = _WRK_DIR / "usr" / "bin" / "wrk"
    libraries = _WRK_DIR / "usr" / "lib" / "x86_64-linux-gnu"
    env = {**os.environ, "LD_LIBRARY_PATH": str(libraries)}
    return Wrk(str(binary), env)


def find_wrk(*, install: bool = True) -> Wrk | None:
    """wrk from PATH, else the copy unpacked from Debian's archive (unpacked now if
    ``install`` and apt-get can fetch it); ``None`` when neither can be had."""
    on_path = shutil.which("wrk")
    if on_path is not None:
        return Wrk(on_path)
    unpacked = _unpacked_wrk()
    if Path(unpacked.path).is_file():
        return unpacked
    if not install or shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        return None
    _WRK_DIR.mkdir(parents=True, exist_ok=True)
    specs = [f"{package}={version}" for package, version in WRK_PACKAGES]
    fetched = subprocess.run(
        ["apt-get", "download", "-qq", *specs],
        cwd=_WRK_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    if fetched.returncode != 0:
        sys.stderr.write(f"bench: could not fetch wrk from Debian's archive: {fetched.stderr}")
        return None
    for deb in _WRK_DIR.glob("*.deb"):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(_WRK_DIR)], check=True)
        deb.unlink()
    return unpacked if Path(unpacked.path).is_file() else None


def require_wrk() -> Wrk:
    wrk = find_wrk()
    if wrk is None:
        raise RuntimeError(
            "this benchmark needs wrk: install it (Debian/Ubuntu: apt-get install wrk) "
            "or give apt-get download access to Debian's archive"
        )
    return wrk


def _wrk_script(load: Load, directory: Path) -> Path:
    lines = [f"wrk.method = {json.dumps(load.method)}"]
    for name, value in load.headers.items():
        lines.append(f"wrk.headers[{json.dumps(name)}] = {json.dumps(value)}")
    if load.body is not None:
        lines.append(f"wrk.body = {json.dumps(load.body.decode())}")
    if load.script is not None:
        lines.append(load.script)
    path = directory / "request.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


def _run_wrk(load: Load, *, connections: int, duration: float, cpus: str | None) -> Result:
    with tempfile.TemporaryDirectory() as directory:
        script = _wrk_script(load, Path(directory))
        wrk = require_wrk()
        command = [
            *pinned(cpus),
            wrk.path,
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            "--latency",
            "--timeout",
            "5s",
            "-s",
            str(script),
            load.url,
        ]
        out = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=duration + 30,
            check=True,
            env=wrk.env,
        ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    errors = int(non2xx.group(1)) if non2xx else 0
    if socket_errors:
        errors += sum(int(g) for g in socket_errors.groups())
    return Result(rps=rps, p50_ms=p50, p99_ms=p99, errors=errors, requests=total)


async def _python_load(
    load: Load, *, connections: int, duration: float, max_requests: int | None
) -> Result:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    sent = 0
    connector = aiohttp.TCPConnector(limit=connections, limit_per_host=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.perf_counter()
        stop_at = start + duration

        async def worker() -> None:
            nonlocal errors, sent
            while (begun := time.perf_counter()) < stop_at:
                if max_requests is not None:
                    if sent >= max_requests:
                        return
                    sent += 1
                url, body = load.next_request() if load.next_request else (load.url, load.body)
                try:
                    async with session.request(
                        load.method, url, headers=load.headers, data=body
                    ) as response:
                        await response.read()
                        if response.status not in load.expect:
                            errors += 1
                except aiohttp.ClientError:
                    errors += 1
                latencies.append(time.perf_counter() - begun)

        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - start
    latencies.sort()

    def quantile(q: float) -> float:
        if not latencies:
            return 0.0
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    return Result(
        rps=len(latencies) / elapsed if elapsed else 0.0,
        p50_ms=quantile(0.50),
        p99_ms=quantile(0.99),
        errors=errors,
        requests=len(latencies),
    )


def run_load(
    load: Load,
    *,
    connections: int,
    duration: float,
    loadgen: str = "auto",
    cpus: str | None = None,
    watch: dict[str, int] | None = None,
    max_requests: int | None = None,
) -> Result:
    """Load ``load`` for ``duration`` seconds over ``connections`` connections.

    wrk (when installed and the request does not change per request) or a Python aiohttp
    load generator; ``watch`` maps names to pids whose CPU time the result reports.
    """
    use_wrk = loadgen == "wrk" or (
        loadgen == "auto"
        and find_wrk() is not None
        and load.next_request is None
        and (max_requests is None or load.script is not None)
    )
    if load.script is not None and not use_wrk:
        raise ValueError("a Load with a wrk script needs wrk")
    before = {name: cpu_seconds(pid) for name, pid in (watch or {}).items()}
    if use_wrk:
        result = _run_wrk(load, connections=connections, duration=duration, cpus=cpus)
    else:
        runner = _python_load(
            load, connections=connections, duration=duration, max_requests=max_requests
        )
        try:
            import uvloop

            result = uvloop.run(runner)
        except ImportError:
            result = asyncio.run(runner)
    result.cpu = {name: cpu_seconds(pid) - before[name] for name, pid in (watch or {}).items()}
    return result


def alternate(
    rounds: int, sides: Sequence[str], measure: Callable[[str], Result]
) -> dict[str, list[Result]]:
    """``rounds`` rounds of every side, the order rotating each round (drift hits all)."""
    runs: dict[str, list[Result]] = {side: [] for side in sides}
    for round_no in range(rounds):
        shift = round_no % len(sides)
        for side in [*sides[shift:], *sides[:shift]]:
            result = measure(side)
            runs[side].append(result)
            log(
                f"round {round_no + 1} {side}: {result.rps:.0f} req/s, p50 {result.p50_ms:.2f} ms,"
                f" p99 {result.p99_ms:.2f} ms, errors {result.errors}"
            )
    return runs


def machine() -> dict[str, Any]:
    """The machine a figure was measured on (ratios travel; absolute numbers do not)."""
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": sys.version.split()[0],
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
