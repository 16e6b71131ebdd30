"""Gateway overhead: one authenticated ``GET /tasks/{id}``, straight to tasks and via the gateway.

Starts a real stack on 127.0.0.1 (embedded NATS, a JWKS served over HTTP, the tasks service
on a migrated SQLite database, the gateway), creates one task, then loads the same URL
with the same token and connection count directly and through the gateway, alternating
rounds, and prints JSON. wrk is used when installed, else a Python (aiohttp) load generator.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from momentum_devtools.benchmarking import (
    ROOT,
    JwksServer,
    Load,
    Result,
    Uvicorn,
    can_pin,
    emit,
    find_wrk,
    free_port,
    log,
    request_json,
    run_load,
    standard_arguments,
    workdir,
)

TASKS_INI = ROOT / "services" / "tasks" / "alembic.ini"


@contextlib.contextmanager
def stack(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    with workdir() as directory:
        yield from _stack(args, directory)


def _stack(args: argparse.Namespace, directory: Path) -> Iterator[dict[str, Any]]:
    from momentum_devtools.natsserver import EmbeddedNats
    from momentum_devtools.testing.issuer import TestIssuer
    from momentum_shared.migrations import upgrade

    started: list[Uvicorn] = []
    nats_server = EmbeddedNats(directory / "nats").start()
    issuer = TestIssuer()
    jwks = JwksServer(issuer.jwks())
    try:
        database_url = f"sqlite+aiosqlite:///{directory / 'tasks.db'}"
        upgrade(TASKS_INI, database_url)
        common = {"TOKEN_ISSUER": issuer.issuer, "JWKS_URL": jwks.url, "NATS_URL": nats_server.url}
        tasks = Uvicorn(
            "tasks",
            "momentum_tasks.app:create_app",
            port=free_port(),
            workers=args.tasks_workers,
            logdir=directory,
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
            logdir=directory,
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
    standard_arguments(parser, db=False)
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.duration = 1, 1.0
    args.tasks_cpus = "0" if args.pin else None
    args.gateway_cpus = "1" if args.pin else None
    loadgen = args.loadgen
    if loadgen == "auto":
        loadgen = "wrk" if find_wrk() is not None else "python"

    pids: dict[str, int] = {}

    def load(url: str, token: str, duration: float, connections: int | None = None) -> Result:
        return run_load(
            Load(url, headers={"Authorization": f"Bearer {token}"}),
            connections=connections or args.connections,
            duration=duration,
            loadgen=loadgen,
            cpus=args.gateway_cpus,
            watch=pids,
        )

    load_before = os.getloadavg()
    with stack(args) as target:
        token = target["token"]
        pids.update(target["pids"])
        log(f"warming up ({loadgen}, {args.connections} connections)")
        load(target["direct"], token, min(2.0, args.duration))
        load(target["gateway"], token, min(2.0, args.duration))
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
                result = load(target[side], token, min(2.0, args.duration), connections=1)
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
    emit(report)


if __name__ == "__main__":
    main()
