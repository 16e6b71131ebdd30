"""Gateway overhead: one authenticated ``GET /tasks/{id}``, straight to tasks and via the gateway.

Starts a real stack on 127.0.0.1 (embedded NATS, a JWKS served over HTTP, the tasks service
on a migrated SQLite database, the gateway), creates one task, then loads the same URL
with the same token and connection count directly and through the gateway, alternating
rounds, and prints JSON. wrk is used when installed, else a Python (aiohttp) load generator.
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
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
TASKS_INI = ROOT / "services" / "tasks" / "alembic.ini"


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    # CPU seconds each server process tree used during the run (Linux /proc; 0 elsewhere).
    cpu: dict[str, float] = field(default_factory=dict)


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


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    from momentum_devtools.natsserver import free_port as pick

    return pick()


class JwksServer:
    """A small real HTTP server publishing the issuer's JWKS, as auth would."""

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


class Uvicorn:
    """A uvicorn process (its own session, so it and its workers stop together)."""

    def __init__(
        self,
        name: str,
        factory: str,
        *,
        port: int,
        workers: int,
        env: dict[str, str],
        logdir: Path,
        cpus: str | None = None,
    ) -> None:
        self.name = name
        self.port = port
        self.log_path = logdir / f"{name}.log"
        command = [
            *pinned(cpus),
            str(VENV_BIN / "uvicorn"),
            factory,
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
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
        self.log_file = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            command,
            env={**os.environ, **env},
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=ROOT,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log_path.read_text()[-3000:]}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.url}/readyz", timeout=2) as response,
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


def pinned(cpus: str | None) -> list[str]:
    """A ``taskset`` prefix placing a process on ``cpus`` (nothing when unpinned)."""
    if not cpus:
        return []
    if shutil.which("taskset") is None:
        raise RuntimeError("--pin needs taskset (util-linux)")
    return ["taskset", "-c", cpus]


def can_pin() -> bool:
    return shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2


def request_json(
    method: str, url: str, token: str, body: dict[str, Any] | None = None
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read() or b"null")


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if match is None:
        raise ValueError(f"unparsable latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def run_wrk(
    url: str,
    token: str,
    *,
    connections: int,
    threads: int,
    duration: float,
    cpus: str | None = None,
) -> Result:
    command = [
        *pinned(cpus),
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--latency",
        "--timeout",
        "5s",
        "-H",
        f"Authorization: Bearer {token}",
        url,
    ]
    out = subprocess.run(
        command, capture_output=True, text=True, timeout=duration + 30, check=True
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


async def _python_load(url: str, token: str, *, connections: int, duration: float) -> Result:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    headers = {"Authorization": f"Bearer {token}"}
    connector = aiohttp.TCPConnector(limit=connections, limit_per_host=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.perf_counter()
        stop_at = start + duration

        async def worker() -> None:
            nonlocal errors
            while (begun := time.perf_counter()) < stop_at:
                try:
                    async with session.get(url, headers=headers) as response:
                        await response.read()
                        if response.status != 200:
                            errors += 1
                except aiohttp.ClientError:
                    errors += 1
                latencies.append(time.perf_counter() - begun)

        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - start
    latencies.sort()

    def quantile(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    return Result(
        rps=len(latencies) / elapsed,
        p50_ms=quantile(0.50),
        p99_ms=quantile(0.99),
        errors=errors,
        requests=len(latencies),
    )


def run_python(url: str, token: str, *, connections: int, duration: float) -> Result:
    try:
        import uvloop

        return uvloop.run(_python_load(url, token, connections=connections, duration=duration))
    except ImportError:
        return asyncio.run(_python_load(url, token, connections=connections, duration=duration))


@contextlib.contextmanager
def stack(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    from momentum_devtools.natsserver import EmbeddedNats
    from momentum_devtools.testing.issuer import TestIssuer
    from momentum_shared.migrations import upgrade

    workdir = Path(tempfile.mkdtemp(prefix="momentum-bench-"))
    started: list[Uvicorn] = []
    nats_server = EmbeddedNats(workdir / "nats").start()
    issuer = TestIssuer()
    jwks = JwksServer(issuer.jwks())
    try:
        database_url = f"sqlite+aiosqlite:///{workdir / 'tasks.db'}"
        upgrade(TASKS_INI, database_url)
        common = {"TOKEN_ISSUER": issuer.issuer, "JWKS_URL": jwks.url, "NATS_URL": nats_server.url}
        tasks = Uvicorn(
            "tasks",
            "momentum_tasks.app:create_app",
            port=free_port(),
            workers=args.tasks_workers,
            logdir=workdir,
            cpus=args.tasks_cpus,
            env={
                **{f"MOMENTUM_TASKS_{k}": v for k, v in common.items()},
                "MOMENTUM_TASKS_DATABASE_URL": database_url,
                "MOMENTUM_TASKS_NATS_USER": "tasks",
                "MOMENTUM_TASKS_NATS_PASSWORD": nats_server.passwords["tasks"],
                "MOMENTUM_TASKS_LOG_LEVEL": "WARNING",
            },
        )
        started.append(tasks)
        tasks.wait_ready()
        gateway = Uvicorn(
            "gateway",
            "momentum_gateway.app:create_app",
            port=free_port(),
            workers=args.gateway_workers,
            logdir=workdir,
            cpus=args.gateway_cpus,
            env={
                **{f"MOMENTUM_GATEWAY_{k}": v for k, v in common.items()},
                "MOMENTUM_GATEWAY_TASKS_URL": tasks.url,
                "MOMENTUM_GATEWAY_AUTH_URL": tasks.url,
                "MOMENTUM_GATEWAY_ANALYTICS_URL": tasks.url,
                "MOMENTUM_GATEWAY_NATS_USER": "gateway",
                "MOMENTUM_GATEWAY_NATS_PASSWORD": nats_server.passwords["gateway"],
                # One token hammers one user: the per-user limit would measure itself.
                "MOMENTUM_GATEWAY_RATE_LIMIT_USER_PER_SECOND": "0",
                # The caps stay on (their bookkeeping is on the hot path), above the load's
                # connections so that they never refuse.
                "MOMENTUM_GATEWAY_MAX_IN_FLIGHT_PER_USER": "1024",
                "MOMENTUM_GATEWAY_MAX_IN_FLIGHT_PER_ADDRESS": "1024",
                "MOMENTUM_GATEWAY_METRICS_PORT": "0",
                "MOMENTUM_GATEWAY_LOG_LEVEL": "WARNING",
            },
        )
        started.append(gateway)
        gateway.wait_ready()
        user = uuid.uuid4()
        token = issuer.mint(user, scope="tasks:read tasks:write", lifetime=3600)
        status, created = request_json(
            "POST", f"{tasks.url}/tasks", token, {"title": "benchmark task", "tags": ["bench"]}
        )
        assert status == 201, created
        path = f"/tasks/{created['id']}"
        direct_status, direct_body = request_json("GET", f"{tasks.url}{path}", token)
        via_status, via_body = request_json("GET", f"{gateway.url}{path}", token)
        assert direct_status == via_status == 200
        assert direct_body == via_body, (direct_body, via_body)
        yield {
            "direct": f"{tasks.url}{path}",
            "gateway": f"{gateway.url}{path}",
            "token": token,
            "pids": {"tasks": tasks.process.pid, "gateway": gateway.process.pid},
        }
    finally:
        for server in reversed(started):
            server.stop()
        jwks.close()
        nats_server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--connections", type=int, default=int(os.environ.get("BENCH_CONNECTIONS", 16))
    )
    parser.add_argument(
        "--duration", type=float, default=float(os.environ.get("BENCH_DURATION", 3))
    )
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", 8)))
    parser.add_argument(
        "--tasks-workers", type=int, default=int(os.environ.get("BENCH_TASKS_WORKERS", 1))
    )
    parser.add_argument(
        "--gateway-workers", type=int, default=int(os.environ.get("BENCH_GATEWAY_WORKERS", 1))
    )
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=os.environ.get("BENCH_PIN", "1") == "1" and can_pin(),
        help=(
            "pin tasks to CPU 0 and the gateway and load generator to CPU 1 (taskset), so the"
            " gateway cannot take the service's core; on a shared machine this also ties each"
            " process to whatever else runs on its CPU (default: on when taskset and two CPUs"
            " exist; BENCH_PIN=0 or --no-pin turns it off)"
        ),
    )
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    args = parser.parse_args()
    args.tasks_cpus = "0" if args.pin else None
    args.gateway_cpus = "1" if args.pin else None
    loadgen = args.loadgen
    if loadgen == "auto":
        loadgen = "wrk" if shutil.which("wrk") else "python"

    pids: dict[str, int] = {}

    def load(url: str, token: str, duration: float, connections: int | None = None) -> Result:
        count = connections or args.connections
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        if loadgen == "wrk":
            result = run_wrk(
                url,
                token,
                connections=count,
                threads=min(args.wrk_threads, count),
                duration=duration,
                cpus=args.gateway_cpus,
            )
        else:
            result = run_python(url, token, connections=count, duration=duration)
        result.cpu = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
        return result

    load_before = os.getloadavg()
    with stack(args) as target:
        token = target["token"]
        pids.update(target["pids"])
        log(f"warming up ({loadgen}, {args.connections} connections)")
        load(target["direct"], token, 2)
        load(target["gateway"], token, 2)
        runs: dict[str, list[Result]] = {"direct": [], "gateway": []}
        for round_no in range(args.rounds):
            # Alternate the order, so drift (caches, the machine's other work) hits both sides.
            order = ("direct", "gateway") if round_no % 2 == 0 else ("gateway", "direct")
            for side in order:
                result = load(target[side], token, args.duration)
                runs[side].append(result)
                log(
                    f"round {round_no + 1} {side}: {result.rps:.0f} req/s, "
                    f"p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms, "
                    f"errors {result.errors}"
                )
        # One connection: no queueing, so the p50 difference is the gateway's own latency.
        single: dict[str, list[Result]] = {"direct": [], "gateway": []}
        for round_no in range(args.rounds):
            order = ("direct", "gateway") if round_no % 2 == 0 else ("gateway", "direct")
            for side in order:
                result = load(target[side], token, 2.0, connections=1)
                single[side].append(result)
                log(
                    f"round {round_no + 1} {side}, 1 connection: p50 {result.p50_ms:.3f} ms, "
                    f"p99 {result.p99_ms:.3f} ms"
                )

    def median(side: str, field: str, source: dict[str, list[Result]] = runs) -> float:
        return float(statistics.median(getattr(r, field) for r in source[side]))

    def cpu_us_per_request(side: str, process: str) -> float:
        used = sum(r.cpu.get(process, 0.0) for r in runs[side])
        served = sum(r.requests for r in runs[side])
        return round(used / served * 1e6, 1) if served else 0.0

    single_direct = median("direct", "p50_ms", single)
    single_gateway = median("gateway", "p50_ms", single)

    direct_rps, gateway_rps = median("direct", "rps"), median("gateway", "rps")
    # Each round's two runs are back to back, so their ratio shares the machine's conditions.
    paired = [g.rps / d.rps for d, g in zip(runs["direct"], runs["gateway"], strict=True) if d.rps]
    direct_p50, gateway_p50 = median("direct", "p50_ms"), median("gateway", "p50_ms")
    report = {
        "direct_rps": round(direct_rps, 1),
        "gateway_rps": round(gateway_rps, 1),
        "ratio": round(gateway_rps / direct_rps, 3) if direct_rps else None,
        "ratio_paired_median": round(statistics.median(paired), 3) if paired else None,
        "direct_p50_ms": round(direct_p50, 3),
        "gateway_p50_ms": round(gateway_p50, 3),
        "direct_p99_ms": round(median("direct", "p99_ms"), 3),
        "gateway_p99_ms": round(median("gateway", "p99_ms"), 3),
        "added_p50_ms": round(gateway_p50 - direct_p50, 3),
        "errors": sum(r.errors for side in runs.values() for r in side),
        # CPU per request, summed over all loaded rounds: insensitive to other work on the
        # machine, it says what the gateway costs whatever the throughput figures suffered.
        "cpu_us_per_request": {
            "tasks_direct": cpu_us_per_request("direct", "tasks"),
            "tasks_via_gateway": cpu_us_per_request("gateway", "tasks"),
            "gateway": cpu_us_per_request("gateway", "gateway"),
        },
        "one_connection": {
            "direct_rps": round(median("direct", "rps", single), 1),
            "gateway_rps": round(median("gateway", "rps", single), 1),
            "direct_p50_ms": round(single_direct, 3),
            "gateway_p50_ms": round(single_gateway, 3),
            "direct_p99_ms": round(median("direct", "p99_ms", single), 3),
            "gateway_p99_ms": round(median("gateway", "p99_ms", single), 3),
            "added_p50_ms": round(single_gateway - single_direct, 3),
        },
        "config": {
            "route": "GET /tasks/{id}",
            "loadgen": loadgen,
            "connections": args.connections,
            "duration_s": args.duration,
            "rounds": args.rounds,
            "statistic": "median of rounds",
            "tasks_workers": args.tasks_workers,
            "gateway_workers": args.gateway_workers,
            "pinning": "tasks on CPU 0; gateway and load generator on CPU 1"
            if args.pin
            else "none",
            "gateway_rate_limit_per_user": "off",
            "uvicorn": "uvloop + httptools, access log off",
            "database": "sqlite (aiosqlite)",
            "cpus": os.cpu_count(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
