"""What tracing costs the hot path: req/s with tracing off against on, at 100% sampling.

Starts on 127.0.0.1 an embedded NATS, auth, and two copies of tasks and of the gateway, each
tasks on its own database: one pair with ``OTEL_TRACES_EXPORTER`` unset (tracing off, as
every program runs by default) and one with ``OTEL_TRACES_EXPORTER=discard`` and
``OTEL_TRACES_SAMPLER=always_on`` (every request traced: the gateway's and tasks' server
spans, the gateway's upstream client span, the statements, and the relay's work, handed by
the SDK's batch processor to an exporter that drops them, in
devtools/src/momentum_devtools/tracing.py).
Then alternates rounds of the same routes through each gateway and prints the throughput
ratio on/off per route, with the spans the traced programs dropped. Prints one JSON object.

``--untraced-tree DIR`` adds a third pair served from DIR, a checkout of Momentum from
before tracing with its own ``.venv`` (``git archive <commit> | tar -x -C DIR``, then
``uv sync --all-packages --frozen`` in it): the ratio off/untraced says what the tracing
code costs when it is off.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from momentum_devtools.benchmarking import (
    ROOT,
    Load,
    MomentumServer,
    Result,
    alternate,
    can_pin,
    database_url,
    emit,
    free_port,
    log,
    machine,
    median,
    ratio,
    request_json,
    run_load,
    standard_arguments,
    workdir,
)
from momentum_devtools.tracing import TALLY_VARIABLE, tallied

MODES = ("off", "on")
# The pair served by a build from before tracing (--untraced-tree).
UNTRACED = "untraced"
PASSWORD = "benchmark password 1234"
# Tracing on at 100% sampling keeps at least this share of the throughput with it off.
TARGET = 0.85
# Tracing off is within 2% of the build without tracing.
OFF_TARGET = 0.98
ROUTES = {
    "get_task": "GET /tasks/{id} via the gateway",
    "list_tasks": "GET /tasks via the gateway (first page, 20 items)",
    "create_task": "POST /tasks via the gateway",
}
TRACED = {"OTEL_TRACES_EXPORTER": "discard", "OTEL_TRACES_SAMPLER": "always_on"}


class Stack:
    def __init__(self, directory: Path, modes: tuple[str, ...]) -> None:
        self.directory = directory
        self.modes = modes
        self.servers: dict[str, MomentumServer] = {}
        self.tally = directory / "discarded-spans"
        self.tally.mkdir()
        self.discarded = 0

    def gateway(self, mode: str) -> str:
        return self.servers[f"gateway-{mode}"].url

    def tasks(self, mode: str) -> str:
        return self.servers[f"tasks-{mode}"].url


@contextlib.contextmanager
def stack(args: argparse.Namespace) -> Iterator[Stack]:
    from momentum_devtools.natsserver import EmbeddedNats
    from momentum_shared.migrations import upgrade

    # The untraced side is the default: no OTEL_* of the caller's may reach any program.
    for name in [name for name in os.environ if name.startswith("OTEL_")]:
        del os.environ[name]
    tree: Path | None = args.untraced_tree
    modes = (*MODES, UNTRACED) if tree is not None else MODES
    with workdir("momentum-bench-tracing-") as directory, contextlib.ExitStack() as resources:
        running = Stack(directory, modes)
        nats_server = resources.enter_context(EmbeddedNats(directory / "nats"))
        urls = {
            name: resources.enter_context(database_url(args.db, name, directory))
            for name in ("auth", *(f"tasks-{mode}" for mode in modes))
        }
        for name, url in urls.items():
            if name == f"tasks-{UNTRACED}" and tree is not None:
                # That build's own migrations, by its own interpreter.
                subprocess.run(
                    [
                        str(tree / ".venv/bin/python"),
                        "-m",
                        "alembic",
                        "-c",
                        str(tree / "services/tasks/alembic.ini"),
                        "upgrade",
                        "head",
                    ],
                    env={**os.environ, "MOMENTUM_TASKS_DATABASE_URL": url},
                    cwd=tree,
                    check=True,
                    capture_output=True,
                )
                continue
            upgrade(ROOT / "services" / name.split("-")[0] / "alembic.ini", url)
        gateway_ports = {mode: free_port() for mode in modes}
        auth_port = free_port()
        # Both gateways front the same auth: tokens name the first as their issuer.
        issuer = f"http://127.0.0.1:{gateway_ports['off']}"

        def env(program: str, mode: str) -> dict[str, str]:
            prefix = f"MOMENTUM_{program.upper()}_"
            values = {
                "TOKEN_ISSUER": issuer,
                "JWKS_URL": f"http://127.0.0.1:{auth_port}/.well-known/jwks.json",
                "NATS_URL": nats_server.url,
                "NATS_USER": program,
                "NATS_PASSWORD": nats_server.passwords[program],
                "LOG_LEVEL": "WARNING",
            }
            found = {prefix + key: value for key, value in values.items()}
            found["FORWARDED_ALLOW_IPS"] = "" if program == "gateway" else "127.0.0.1"
            if mode == "on":
                found.update(TRACED, **{TALLY_VARIABLE: str(running.tally)})
            return found

        try:
            auth = MomentumServer(
                "auth",
                "momentum_auth.app:create_app",
                port=auth_port,
                env={
                    **env("auth", "off"),
                    "MOMENTUM_AUTH_DATABASE_URL": urls["auth"],
                    "MOMENTUM_AUTH_ISSUER": issuer,
                    "MOMENTUM_AUTH_ACCESS_TOKEN_LIFETIME_SECONDS": "7200",
                    "MOMENTUM_AUTH_PASSWORD_MEMORY_COST_KIB": "8",
                    "MOMENTUM_AUTH_PASSWORD_TIME_COST": "1",
                },
                logdir=directory,
                cpus=args.service_cpus,
            )
            running.servers["auth"] = auth
            auth.wait_ready()
            for mode in modes:
                running.servers[f"tasks-{mode}"] = MomentumServer(
                    f"tasks-{mode}",
                    "momentum_tasks.app:create_app",
                    env={
                        **env("tasks", mode),
                        "MOMENTUM_TASKS_DATABASE_URL": urls[f"tasks-{mode}"],
                    },
                    logdir=directory,
                    cpus=args.service_cpus,
                    tree=tree if mode == UNTRACED else None,
                )
            for mode in modes:
                running.servers[f"gateway-{mode}"] = MomentumServer(
                    f"gateway-{mode}",
                    "momentum_gateway.app:create_app",
                    port=gateway_ports[mode],
                    env={
                        **env("gateway", mode),
                        "MOMENTUM_GATEWAY_AUTH_URL": auth.url,
                        "MOMENTUM_GATEWAY_TASKS_URL": running.tasks(mode),
                        # Not measured; the gateway needs an address for it.
                        "MOMENTUM_GATEWAY_ANALYTICS_URL": f"http://127.0.0.1:{free_port()}",
                        # One user and one address make all the load, as in bench/hotpath.
                        "MOMENTUM_GATEWAY_RATE_LIMIT_USER_PER_SECOND": "0",
                        "MOMENTUM_GATEWAY_RATE_LIMIT_ADDRESS_PER_SECOND": "0",
                        "MOMENTUM_GATEWAY_MAX_IN_FLIGHT_PER_USER": "1024",
                        "MOMENTUM_GATEWAY_MAX_IN_FLIGHT_PER_ADDRESS": "1024",
                        "MOMENTUM_GATEWAY_METRICS_PORT": "0",
                    },
                    logdir=directory,
                    cpus=args.gateway_cpus,
                    tree=tree if mode == UNTRACED else None,
                )
            for name, server in running.servers.items():
                if name != "auth":
                    server.wait_ready()
            yield running
        finally:
            # Stopped gracefully (SIGTERM) first: the last spans are exported at shutdown.
            for server in reversed(list(running.servers.values())):
                server.stop()
            running.discarded = tallied(running.tally)


def seed(running: Stack, tasks: int) -> dict[str, Any]:
    """A user, an access token, and ``tasks`` tasks behind each gateway."""
    email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
    auth = running.servers["auth"].url
    status, body = request_json(
        "POST",
        f"{auth}/auth/register",
        body={"email": email, "password": PASSWORD, "display_name": "Bench"},
    )
    assert status == 201, body
    status, body = request_json(
        "POST",
        f"{auth}/auth/token",
        form={
            "grant_type": "password",
            "username": email,
            "password": PASSWORD,
            "scope": "profile tasks:read tasks:write",
        },
    )
    assert status == 200, body
    token = body["access_token"]
    paths = {}
    for mode in running.modes:
        ids = []
        for number in range(tasks):
            status, body = request_json(
                "POST", f"{running.tasks(mode)}/tasks", token, {"title": f"seeded task {number}"}
            )
            assert status == 201, body
            ids.append(body["id"])
        paths[mode] = f"/tasks/{ids[0]}"
    return {"token": token, "task_path": paths}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=os.environ.get("BENCH_PIN", "1") == "1" and can_pin(),
        help="auth and both tasks on CPU 0, both gateways and wrk on CPU 1 (taskset)",
    )
    parser.add_argument(
        "--untraced-tree",
        type=Path,
        default=None,
        help="a checkout of Momentum from before tracing, with its .venv: a third pair served"
        " from it measures tracing off against no tracing code at all",
    )
    standard_arguments(parser)
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.duration = 1, 1.0
    args.service_cpus = "0" if args.pin else None
    args.gateway_cpus = "1" if args.pin else None
    load_before = os.getloadavg()
    with stack(args) as running:
        seeded = seed(running, tasks=25)
        bearer = {"Authorization": f"Bearer {seeded['token']}"}
        body = json.dumps({"title": "benchmark task", "tags": ["bench"]}).encode()
        pids = {name: server.pid for name, server in running.servers.items() if name != "auth"}

        def measure(side: str) -> Result:
            route, mode = side.rsplit(":", 1)
            base = running.gateway(mode)
            if route == "get_task":
                load = Load(f"{base}{seeded['task_path'][mode]}", headers=bearer)
            elif route == "list_tasks":
                load = Load(f"{base}/tasks?limit=20", headers=bearer)
            else:
                load = Load(
                    f"{base}/tasks",
                    method="POST",
                    headers={**bearer, "Content-Type": "application/json"},
                    body=body,
                    expect=(201,),
                )
            return run_load(
                load,
                connections=args.connections,
                duration=args.duration,
                loadgen="wrk",
                cpus=args.gateway_cpus,
                watch={name: pid for name, pid in pids.items() if name.endswith(mode)},
            )

        sides = [f"{route}:{mode}" for route in ROUTES for mode in running.modes]
        if not args.quick:
            log(f"warming up {len(sides)} sides")
            for side in sides:
                measure(side)
        runs = alternate(args.rounds, sides, measure)

    routes: dict[str, Any] = {}
    for route in ROUTES:
        off, on = runs[f"{route}:off"], runs[f"{route}:on"]
        off_rps, on_rps = median([r.rps for r in off]), median([r.rps for r in on])
        value = ratio(on_rps, off_rps)

        def cpu_us(results: list[Result]) -> float:
            served = sum(r.requests for r in results)
            used = sum(sum(r.cpu.values()) for r in results)
            return round(used / served * 1e6, 1) if served else 0.0

        def cpu_us_of(results: list[Result], name: str) -> float:
            served = sum(r.requests for r in results)
            used = sum(r.cpu.get(name, 0.0) for r in results)
            return round(used / served * 1e6, 1) if served else 0.0

        routes[route] = {
            "route": ROUTES[route],
            "off_rps": round(off_rps, 1),
            "on_rps": round(on_rps, 1),
            "ratio": value,
            "target": TARGET,
            "met": value is not None and value >= TARGET,
            # CPU of the gateway and tasks together, per request, and the ratio of off's to
            # on's: the throughput ratio of CPU-bound servers, steadier than req/s on a
            # machine shared with other work.
            "off_cpu_us_per_request": cpu_us(off),
            "on_cpu_us_per_request": cpu_us(on),
            "cpu_ratio": ratio(cpu_us(off), cpu_us(on)),
            # The same, per program: where tracing's cost goes.
            "cpu_us_per_request_by_program": {
                program: {
                    mode: cpu_us_of(runs[f"{route}:{mode}"], f"{program}-{mode}") for mode in MODES
                }
                for program in ("gateway", "tasks")
            },
            "off_p50_ms": round(median([r.p50_ms for r in off]), 3),
            "on_p50_ms": round(median([r.p50_ms for r in on]), 3),
            "errors": sum(r.errors for r in [*off, *on]),
        }
        if UNTRACED in running.modes:
            untraced = runs[f"{route}:{UNTRACED}"]
            untraced_rps = median([r.rps for r in untraced])
            off_value = ratio(off_rps, untraced_rps)
            routes[route].update(
                untraced_rps=round(untraced_rps, 1),
                off_over_untraced=off_value,
                off_cpu_ratio=ratio(cpu_us(untraced), cpu_us(off)),
                off_target=OFF_TARGET,
                off_met=off_value is not None and off_value >= OFF_TARGET,
                untraced_cpu_us_per_request=cpu_us(untraced),
            )
            routes[route]["errors"] += sum(r.errors for r in untraced)
    traced_requests = sum(
        r.requests for side, results in runs.items() for r in results if side.endswith(":on")
    )
    emit(
        {
            "benchmark": "tracing",
            "routes": routes,
            "spans_discarded": running.discarded,
            "traced_requests_measured": traced_requests,
            "met": all(r["met"] and r.get("off_met", True) for r in routes.values()),
            "errors": sum(r["errors"] for r in routes.values()),
            "config": {
                "db": args.db,
                "loadgen": "wrk",
                "connections": args.connections,
                "duration_s": args.duration,
                "rounds": args.rounds,
                "statistic": "median of alternated rounds",
                "off": "OTEL_TRACES_EXPORTER unset",
                "on": " ".join(f"{k}={v}" for k, v in TRACED.items()),
                "untraced": str(args.untraced_tree) if args.untraced_tree else None,
                "server": "python -m momentum_shared.server (uvicorn, httptools, uvloop)",
                "pinning": "auth and tasks on CPU 0; gateways and wrk on CPU 1"
                if args.pin
                else "none",
                "load_average_before": [round(x, 2) for x in load_before],
            },
            "machine": machine(),
        }
    )


if __name__ == "__main__":
    main()
