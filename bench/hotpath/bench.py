"""The hot path: req/s of five routes against a bare FastAPI hello, direct and via the gateway.

Starts a real stack on 127.0.0.1 (embedded NATS; auth, tasks and analytics served as
Momentum serves them, each on its own database; the gateway; the hello baseline), signs a
user in at auth (tokens verify at the gateway and at every service against auth's JWKS),
seeds tasks, then alternates rounds of: the hello, each route straight to its service and
each route through the gateway. ``POST /auth/token`` (refresh_token grant) rotates its
token, so its wrk script keeps a pool and uses the new token of each answer. Last, the RSS
of every process after ``2,000`` and after ``--leak-requests`` requests of the route mix
through the gateway. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from momentum_devtools.benchmarking import (
    ROOT,
    Load,
    MomentumServer,
    Result,
    Uvicorn,
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
    rss_bytes,
    run_load,
    standard_arguments,
    workdir,
)

HERE = Path(__file__).resolve().parent
SERVICES = ("auth", "tasks", "analytics")
PASSWORD = "benchmark password 1234"
TARGETS = {
    "get_task": 0.30,
    "list_tasks": 0.15,
    "create_task": 0.10,
    "weekly_report": 0.15,
    "refresh_token": 0.10,
}
GATEWAY_TARGET = 0.90
ROUTES = {
    "get_task": "GET /tasks/{id}",
    "list_tasks": "GET /tasks (first page, 20 items)",
    "create_task": "POST /tasks",
    "weekly_report": "GET /analytics/reports/weekly",
    "refresh_token": "POST /auth/token (grant_type=refresh_token)",
}
FORM = "application/x-www-form-urlencoded"

# A pool of refresh tokens, one file line each; every answer's new token goes back into it.
REFRESH_LUA = """
local tokens = {}
for line in io.lines(%(pool)s) do tokens[#tokens + 1] = line end
local form = { ["Content-Type"] = "application/x-www-form-urlencoded" }
request = function()
  local token = table.remove(tokens) or "pool-exhausted"
  return wrk.format("POST", "/auth/token", form,
    "grant_type=refresh_token&refresh_token=" .. token)
end
response = function(status, headers, body)
  local token = string.match(body, '"refresh_token"%%s*:%%s*"([^"]+)"')
  if token then tokens[#tokens + 1] = token end
end
"""

# The route mix of the leak phase, stopped after ``limit`` answers.
MIX_LUA = """
local tokens = {}
for line in io.lines(%(pool)s) do tokens[#tokens + 1] = line end
local auth = { ["Authorization"] = "Bearer " .. %(token)s }
local post = { ["Authorization"] = "Bearer " .. %(token)s,
  ["Content-Type"] = "application/json" }
local form = { ["Content-Type"] = "application/x-www-form-urlencoded" }
local n, answered, limit = 0, 0, %(limit)d
request = function()
  n = n + 1
  local k = n %% 10
  if k == 0 then
    return wrk.format("POST", "/tasks", post, '{"title":"leak task"}')
  elseif k == 5 and #tokens > 0 then
    return wrk.format("POST", "/auth/token", form,
      "grant_type=refresh_token&refresh_token=" .. table.remove(tokens))
  elseif k %% 3 == 0 then
    return wrk.format("GET", "/tasks?limit=20", auth)
  elseif k %% 3 == 1 then
    return wrk.format("GET", "/analytics/reports/weekly", auth)
  end
  return wrk.format("GET", %(task_path)s, auth)
end
response = function(status, headers, body)
  local token = string.match(body, '"refresh_token"%%s*:%%s*"([^"]+)"')
  if token then tokens[#tokens + 1] = token end
  answered = answered + 1
  if answered >= limit then wrk.thread:stop() end
end
"""


def _lua(text: str) -> str:
    return json.dumps(text)


class Stack:
    def __init__(self, args: argparse.Namespace, directory: Path) -> None:
        self.args = args
        self.directory = directory
        self.servers: dict[str, Uvicorn] = {}
        self.pool_no = 0
        self.email = ""

    def password_grant(self) -> dict[str, Any]:
        status, body = request_json(
            "POST",
            f"{self.servers['auth'].url}/auth/token",
            form={
                "grant_type": "password",
                "username": self.email,
                "password": PASSWORD,
                "scope": "profile tasks:read tasks:write analytics:read",
            },
        )
        assert status == 200, body
        return dict(body)

    def refresh_pool(self, size: int) -> Path:
        """A file of ``size`` fresh refresh tokens (each a family of its own)."""
        self.pool_no += 1
        path = self.directory / f"refresh-{self.pool_no}.txt"
        path.write_text("".join(self.password_grant()["refresh_token"] + "\n" for _ in range(size)))
        return path


@contextlib.contextmanager
def stack(args: argparse.Namespace) -> Iterator[Stack]:
    from momentum_devtools.natsserver import EmbeddedNats
    from momentum_shared.migrations import upgrade

    with workdir("momentum-bench-hotpath-") as directory, contextlib.ExitStack() as resources:
        running = Stack(args, directory)
        nats_server = resources.enter_context(EmbeddedNats(directory / "nats"))
        urls = {
            name: resources.enter_context(database_url(args.db, name, directory))
            for name in SERVICES
        }
        for name, url in urls.items():
            upgrade(ROOT / "services" / name / "alembic.ini", url)
        gateway_port = free_port()
        auth_port = free_port()
        issuer = f"http://127.0.0.1:{gateway_port}"
        jwks_url = f"http://127.0.0.1:{auth_port}/.well-known/jwks.json"

        def service_env(name: str) -> dict[str, str]:
            prefix = f"MOMENTUM_{name.upper()}_"
            values = {
                "TOKEN_ISSUER": issuer,
                "JWKS_URL": jwks_url,
                "NATS_URL": nats_server.url,
                "NATS_USER": name,
                "NATS_PASSWORD": nats_server.passwords[name],
                "LOG_LEVEL": "WARNING",
            }
            if name in urls:
                values["DATABASE_URL"] = urls[name]
            env = {prefix + key: value for key, value in values.items()}
            env["FORWARDED_ALLOW_IPS"] = "" if name == "gateway" else "127.0.0.1"
            return env

        auth_env = {
            **service_env("auth"),
            "MOMENTUM_AUTH_ISSUER": issuer,
            "MOMENTUM_AUTH_ACCESS_TOKEN_LIFETIME_SECONDS": "7200",
            # The pools of refresh tokens are signed in for: cheap hashes, no budgets.
            "MOMENTUM_AUTH_PASSWORD_MEMORY_COST_KIB": "8",
            "MOMENTUM_AUTH_PASSWORD_TIME_COST": "1",
            "MOMENTUM_AUTH_THROTTLE_TOKEN_REQUESTS_PER_USER": "1000000",
            "MOMENTUM_AUTH_THROTTLE_TOKEN_REQUESTS_PER_ADDRESS": "1000000",
        }
        try:
            auth = MomentumServer(
                "auth",
                "momentum_auth.app:create_app",
                port=auth_port,
                env=auth_env,
                logdir=directory,
                cpus=args.service_cpus,
            )
            running.servers["auth"] = auth
            auth.wait_ready()
            for name in ("tasks", "analytics"):
                server: Uvicorn = MomentumServer(
                    name,
                    f"momentum_{name}.app:create_app",
                    env=service_env(name),
                    logdir=directory,
                    cpus=args.service_cpus,
                )
                running.servers[name] = server
            gateway = MomentumServer(
                "gateway",
                "momentum_gateway.app:create_app",
                port=gateway_port,
                env={
                    **service_env("gateway"),
                    "MOMENTUM_GATEWAY_AUTH_URL": auth.url,
                    "MOMENTUM_GATEWAY_TASKS_URL": running.servers["tasks"].url,
                    "MOMENTUM_GATEWAY_ANALYTICS_URL": running.servers["analytics"].url,
                    # One user and one address make all the load: limits would measure
                    # themselves. The in-flight caps stay on, above the connections.
                    "MOMENTUM_GATEWAY_RATE_LIMIT_USER_PER_SECOND": "0",
                    "MOMENTUM_GATEWAY_RATE_LIMIT_ADDRESS_PER_SECOND": "0",
                    "MOMENTUM_GATEWAY_MAX_IN_FLIGHT_PER_USER": "1024",
                    "MOMENTUM_GATEWAY_MAX_IN_FLIGHT_PER_ADDRESS": "1024",
                    "MOMENTUM_GATEWAY_METRICS_PORT": "0",
                },
                logdir=directory,
                cpus=args.gateway_cpus,
            )
            running.servers["gateway"] = gateway
            hello = Uvicorn(
                "hello", "hello:create_app", logdir=directory, cpus=args.service_cpus, app_dir=HERE
            )
            running.servers["hello"] = hello
            for name in ("tasks", "analytics", "gateway"):
                running.servers[name].wait_ready()
            hello.wait_ready("/hello")
            yield running
        finally:
            for server in reversed(list(running.servers.values())):
                server.stop()


def seed(running: Stack, tasks: int) -> dict[str, Any]:
    """A user, an access token, ``tasks`` tasks (a few completed) and a non-empty report."""
    servers = running.servers
    running.email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
    status, body = request_json(
        "POST",
        f"{servers['auth'].url}/auth/register",
        body={"email": running.email, "password": PASSWORD, "display_name": "Bench"},
    )
    assert status == 201, body
    token = running.password_grant()["access_token"]
    ids = []
    for number in range(tasks):
        status, body = request_json(
            "POST", f"{servers['tasks'].url}/tasks", token, {"title": f"seeded task {number}"}
        )
        assert status == 201, body
        ids.append(body["id"])
    for task_id in ids[:5]:
        status, body = request_json(
            "POST", f"{servers['tasks'].url}/tasks/{task_id}/complete", token
        )
        assert status == 200, body
    # The events reach analytics through the outbox and NATS: wait until the report shows them.
    deadline = time.monotonic() + 30
    report: Any = None
    while time.monotonic() < deadline:
        status, report = request_json(
            "GET", f"{servers['analytics'].url}/analytics/reports/weekly", token
        )
        assert status == 200, report
        if report["totals"].get("tasks_completed"):
            break
        time.sleep(0.5)
    else:
        log(f"the weekly report is still empty after 30 s: {report}")
    return {"token": token, "task_path": f"/tasks/{ids[0]}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--leak-requests",
        type=int,
        default=int(os.environ.get("BENCH_LEAK_REQUESTS", 200_000)),
        help="requests of the mix after the first RSS reading (BENCH_LEAK_REQUESTS sets it too;"
        " at the mix's few hundred req/s the default 200,000 takes 10-20 minutes)",
    )
    parser.add_argument("--leak-warmup", type=int, default=2_000)
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=os.environ.get("BENCH_PIN", "1") == "1" and can_pin(),
        help="services and the hello on CPU 0, the gateway and wrk on CPU 1 (taskset)",
    )
    standard_arguments(parser)
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.duration = 1, 1.0
        args.leak_warmup, args.leak_requests = 100, 200
    args.service_cpus = "0" if args.pin else None
    args.gateway_cpus = "1" if args.pin else None
    load_before = os.getloadavg()
    with stack(args) as running:
        seeded = seed(running, tasks=25)
        token = seeded["token"]
        servers = running.servers
        bearer = {"Authorization": f"Bearer {token}"}
        pids = {name: server.pid for name, server in servers.items()}
        body = json.dumps({"title": "benchmark task", "tags": ["bench"]}).encode()

        def load_for(route: str, base: str) -> Load:
            if route == "get_task":
                return Load(f"{base}{seeded['task_path']}", headers=bearer)
            if route == "list_tasks":
                return Load(f"{base}/tasks?limit=20", headers=bearer)
            if route == "create_task":
                return Load(
                    f"{base}/tasks",
                    method="POST",
                    headers={**bearer, "Content-Type": "application/json"},
                    body=body,
                    expect=(201,),
                )
            if route == "weekly_report":
                return Load(f"{base}/analytics/reports/weekly", headers=bearer)
            pool = running.refresh_pool(args.connections * 2)
            return Load(f"{base}/auth/token", script=REFRESH_LUA % {"pool": _lua(str(pool))})

        service_of = {
            "get_task": "tasks",
            "list_tasks": "tasks",
            "create_task": "tasks",
            "weekly_report": "analytics",
            "refresh_token": "auth",
        }

        def measure(side: str) -> Result:
            if side == "hello":
                load = Load(f"{servers['hello'].url}/hello")
            else:
                route, via = side.rsplit(":", 1)
                base = servers["gateway" if via == "gateway" else service_of[route]].url
                load = load_for(route, base)
            return run_load(
                load,
                connections=args.connections,
                duration=args.duration,
                loadgen="wrk",
                cpus=args.gateway_cpus,
                watch=pids,
            )

        sides = ["hello"] + [f"{route}:{via}" for route in TARGETS for via in ("direct", "gateway")]
        if not args.quick:
            log(f"warming up {len(sides)} sides")
            for side in sides:
                measure(side)
        runs = alternate(args.rounds, sides, measure)

        rate = {"rps": 200.0}

        def mix(limit: int) -> tuple[int, int]:
            """``limit`` answers of the mix, in runs sized by the rate so far: (answers, errors).

            wrk's run lasts its duration even after the script stops it, so each run is sized
            to end near its count."""
            answered = errors = 0
            while answered < limit:
                left = limit - answered
                duration = min(60.0, max(1.0, left / rate["rps"] * 1.05))
                pool = running.refresh_pool(args.connections)
                script = MIX_LUA % {
                    "pool": _lua(str(pool)),
                    "token": _lua(token),
                    "limit": left,
                    "task_path": _lua(seeded["task_path"]),
                }
                result = run_load(
                    Load(f"{servers['gateway'].url}/tasks", script=script),
                    connections=args.connections,
                    duration=duration,
                    loadgen="wrk",
                    cpus=args.gateway_cpus,
                )
                answered += result.requests
                errors += result.errors
                if result.requests >= left:
                    break
                rate["rps"] = max(10.0, result.rps)
            return answered, errors

        log(f"leak: {args.leak_warmup} requests of the mix through the gateway")
        warm_count, warm_errors = mix(args.leak_warmup)
        watched = ("tasks", "analytics", "auth", "gateway")
        rss_early = {name: rss_bytes(pids[name]) for name in watched}
        log(f"leak: {args.leak_requests} requests more")
        started = time.monotonic()
        long_count, long_errors = mix(args.leak_requests)
        mix_rps = long_count / (time.monotonic() - started)
        rss_late = {name: rss_bytes(pids[name]) for name in rss_early}

    hello_rps = median([r.rps for r in runs["hello"]])
    routes: dict[str, Any] = {}
    for route, target in TARGETS.items():
        direct = runs[f"{route}:direct"]
        via = runs[f"{route}:gateway"]
        direct_rps = median([r.rps for r in direct])
        gateway_rps = median([r.rps for r in via])
        served = sum(r.requests for r in direct)
        used = sum(r.cpu.get(service_of[route], 0.0) for r in direct)
        gateway_served = sum(r.requests for r in via)
        gateway_used = sum(r.cpu.get("gateway", 0.0) for r in via)
        over = ratio(gateway_rps, direct_rps)
        value = ratio(direct_rps, hello_rps)
        routes[route] = {
            "route": ROUTES[route],
            "direct_rps": round(direct_rps, 1),
            "gateway_rps": round(gateway_rps, 1),
            "hello_rps": round(hello_rps, 1),
            "ratio": value,
            "target": target,
            "met": value is not None and value >= target,
            "gateway_over_direct": over,
            "gateway_target": GATEWAY_TARGET,
            "gateway_met": over is not None and over >= GATEWAY_TARGET,
            "cpu_us_per_request": round(used / served * 1e6, 1) if served else 0.0,
            "gateway_cpu_us_per_request": (
                round(gateway_used / gateway_served * 1e6, 1) if gateway_served else 0.0
            ),
            "p50_ms": round(median([r.p50_ms for r in direct]), 3),
            "gateway_p50_ms": round(median([r.p50_ms for r in via]), 3),
            "errors": sum(r.errors for r in [*direct, *via]),
        }
    rss = {
        name: {
            "early_bytes": rss_early[name],
            "late_bytes": rss_late[name],
            "ratio": ratio(rss_late[name], rss_early[name]),
            "target": 1.10,
            "met": bool(rss_early[name]) and rss_late[name] <= 1.10 * rss_early[name],
        }
        for name in rss_early
    }
    emit(
        {
            "benchmark": "hotpath",
            "routes": routes,
            "hello_rps": round(hello_rps, 1),
            "rss": {
                "after_requests": [warm_count, warm_count + long_count],
                "processes": rss,
                "errors": warm_errors + long_errors,
                "mix_rps": round(mix_rps, 1),
            },
            "met": all(r["met"] and r["gateway_met"] for r in routes.values())
            and all(r["met"] for r in rss.values()),
            "errors": sum(r["errors"] for r in routes.values()),
            "config": {
                "db": args.db,
                "loadgen": "wrk",
                "connections": args.connections,
                "duration_s": args.duration,
                "rounds": args.rounds,
                "statistic": "median of alternated rounds",
                "server": "python -m momentum_shared.server (uvicorn, httptools, uvloop)",
                "baseline": "bench/hotpath/hello.py: uvicorn, uvloop, httptools, no access log",
                "pinning": "services and hello on CPU 0; gateway and wrk on CPU 1"
                if args.pin
                else "none",
                "gateway_rate_limits": "off (in-flight caps on)",
                "load_average_before": [round(x, 2) for x in load_before],
            },
            "machine": machine(),
        }
    )


if __name__ == "__main__":
    main()
