"""Peak memory of auth under a burst of concurrent sign-ins, at each hashing concurrency.

Starts auth as production serves it (``python -m momentum_shared.server``, argon2id at its
production parameters: m = 19 MiB, t = 2, p = 1) on PostgreSQL (or SQLite with ``--db``)
with an embedded NATS, once per ``--workers`` value (``PASSWORD_HASHING_WORKERS``: what a
container's CPU quota gives, 1 for the prod limit of one CPU). Each run registers users,
signs one in to warm up, records the resident set, resets the kernel's peak, then fires
``--burst`` concurrent password grants ``--rounds`` times: as many hash at once as there
are workers, up to the queue length wait, and the rest are refused with 503 at once. The
peak is the kernel's high-water mark of the process's resident set (``VmHWM``), so no
sample can miss it.
Prints one JSON object; ``docs/deploy.md`` ("Auth memory") uses its figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from momentum_devtools.benchmarking import (
    ROOT,
    MomentumServer,
    database_url,
    emit,
    log,
    machine,
    request_json,
    standard_arguments,
    workdir,
)

PASSWORD = "correct horse battery staple 42"
MIB = 1024 * 1024


def memory(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (the peak so far) of ``pid``, in bytes."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) * 1024
    return values


async def burst(url: str, emails: list[str], size: int) -> Counter[int]:
    """``size`` password grants at once (users taken in turn); their status codes."""
    limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:

        async def sign_in(number: int) -> int:
            response = await client.post(
                f"{url}/auth/token",
                data={
                    "grant_type": "password",
                    "username": emails[number % len(emails)],
                    "password": PASSWORD,
                    "scope": "profile",
                },
            )
            return response.status_code

        return Counter(await asyncio.gather(*(sign_in(n) for n in range(size))))


def measure(args: argparse.Namespace, workers: int, directory: Path) -> dict[str, Any]:
    from momentum_devtools.natsserver import EmbeddedNats
    from momentum_shared.migrations import upgrade

    with contextlib.ExitStack() as resources:
        nats_server = resources.enter_context(EmbeddedNats(directory / f"nats-{workers}"))
        url = resources.enter_context(database_url(args.db, f"auth{workers}", directory))
        upgrade(ROOT / "services" / "auth" / "alembic.ini", url)
        env = {
            "MOMENTUM_AUTH_DATABASE_URL": url,
            "MOMENTUM_AUTH_NATS_URL": nats_server.url,
            "MOMENTUM_AUTH_NATS_USER": "auth",
            "MOMENTUM_AUTH_NATS_PASSWORD": nats_server.passwords["auth"],
            "MOMENTUM_AUTH_LOG_LEVEL": "WARNING",
            "MOMENTUM_AUTH_PASSWORD_HASHING_WORKERS": str(workers),
            # Sign-ins from one address and a few users: the throttles would measure
            # themselves, not the hashing.
            "MOMENTUM_AUTH_THROTTLE_TOKEN_REQUESTS_PER_USER": "1000000",
            "MOMENTUM_AUTH_THROTTLE_TOKEN_REQUESTS_PER_ADDRESS": "1000000",
            "MOMENTUM_AUTH_THROTTLE_REGISTRATIONS_PER_ADDRESS": "1000000",
            # A check in progress counts as a failure of its address until it succeeds.
            "MOMENTUM_AUTH_THROTTLE_MAX_FAILURES_PER_ADDRESS": "1000000",
            "MOMENTUM_AUTH_THROTTLE_MAX_FAILURES_PER_ACCOUNT_ADDRESS": "1000000",
            "FORWARDED_ALLOW_IPS": "127.0.0.1",
        }
        auth = MomentumServer(
            f"auth-{workers}", "momentum_auth.app:create_app", env=env, logdir=directory
        )
        try:
            auth.wait_ready()
            emails = []
            for number in range(args.users):
                email = f"burst{number}@example.com"
                status, body = request_json(
                    "POST",
                    f"{auth.url}/auth/register",
                    body={"email": email, "password": PASSWORD, "display_name": "Burst"},
                )
                assert status == 201, body
                emails.append(email)
            asyncio.run(burst(auth.url, emails, 1))
            before = memory(auth.process.pid)
            # The high-water mark starts again here: registrations hashed too.
            Path(f"/proc/{auth.process.pid}/clear_refs").write_text("5")
            statuses: Counter[int] = Counter()
            for _ in range(args.rounds):
                statuses += asyncio.run(burst(auth.url, emails, args.burst))
            after = memory(auth.process.pid)
        finally:
            auth.stop()
    result = {
        "workers": workers,
        "rss_after_warm_up_mib": round(before["VmRSS"] / MIB, 1),
        "peak_rss_mib": round(after["VmHWM"] / MIB, 1),
        "rss_after_burst_mib": round(after["VmRSS"] / MIB, 1),
        "statuses": {str(code): count for code, count in sorted(statuses.items())},
    }
    log(f"workers={workers}: {result}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    standard_arguments(parser)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--burst", type=int, default=200, help="concurrent sign-ins per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--users", type=int, default=200, help="accounts the burst signs in")
    args = parser.parse_args()
    if args.quick:
        args.workers, args.burst, args.rounds, args.users = [1], 8, 1, 8
    with workdir("momentum-bench-authmemory-") as directory:
        runs = [measure(args, workers, directory) for workers in args.workers]
    emit(
        {
            "benchmark": "authmemory",
            "db": args.db,
            "machine": machine(),
            "argon2id": {"memory_cost_kib": 19456, "time_cost": 2, "parallelism": 1},
            "burst": args.burst,
            "rounds": args.rounds,
            "runs": runs,
        }
    )


if __name__ == "__main__":
    main()
