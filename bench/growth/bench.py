"""Cost against data size: a deep ``GET /tasks`` page, a search, and the reports of a long history.

Starts real processes on 127.0.0.1 (embedded NATS, a JWKS served over HTTP, tasks and
analytics on fresh databases of ``--db``, and a bare FastAPI hello as the baseline), seeds
the databases in bulk (Core multi-row inserts): one user with 100,000 tasks plus a few
other users' tasks; one analytics user with three years of daily history, exactly as the
consumer leaves it (daily rows and streak runs), and one with a week. It then alternates
load rounds of:

- ``GET /tasks`` page 1 and page 500 (the page-500 cursor is reached by following
  ``next_cursor`` from page 1, as a client would), target: deep within 1.5x of page 1;
- ``GET /tasks?search=<two words>&sort=relevance`` page 1 of the same user (titles and
  descriptions are drawn from a vocabulary of common words, so a word is in about 4 % of
  the tasks and both words in a few dozen), target: within 3x of the plain page 1;
- ``GET /analytics/reports/weekly`` and ``/monthly`` of the three-year user and of the
  one-week user, target: within 1.5x;
- the weekly report against the hello, target: >= 0.15x.

Each figure is a median of rounds; ratios are of medians within this run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from momentum_devtools.benchmarking import (
    ROOT,
    JwksServer,
    Load,
    Result,
    Uvicorn,
    database_url,
    emit,
    log,
    machine,
    median,
    ratio,
    request_json,
    run_load,
    standard_arguments,
    workdir,
)

TASKS_INI = ROOT / "services" / "tasks" / "alembic.ini"
ANALYTICS_INI = ROOT / "services" / "analytics" / "alembic.ini"
HERE = Path(__file__).resolve().parent
# The one baseline app of every benchmark (bench/hotpath/hello.py).
HELLO_DIR = HERE.parent / "hotpath"
PAGE_SIZE = 20
GROWTH_TARGET = 1.5
SEARCH_TARGET = 3.0
HELLO_TARGET = 0.15
SIDES = (
    "tasks_page_1",
    "tasks_deep_page",
    "tasks_search_page_1",
    "weekly_one_week",
    "weekly_long_history",
    "monthly_one_week",
    "monthly_long_history",
    "hello",
)
# Words of the seeded titles and descriptions; the search asks for two of them, the last
# typed half-way (a prefix), as a user would.
_WORDS = (
    "report budget review meeting plan call email invoice design draft schedule update"
    " client project team launch order payment contract garden kitchen travel flight hotel"
    " doctor school dentist birthday present grocery laundry insurance taxes renew passport"
    " visa backup server deploy release test bug feature migrate database index query"
    " cache network printer laptop phone charger battery clean paint fence door window"
    " roof water plants dog cat walk run train bike car repair tyre oil book read write"
    " letter card thank friend family dinner lunch breakfast recipe bake bread cake milk"
    " coffee tea shop market bank loan rent lease landlord plumber heating electric bill"
    " quarterly annual monthly weekly agenda minutes slides notes summary proposal"
)
VOCABULARY = _WORDS.split()
SEARCH = "quarterly rep"


# --- seeding --------------------------------------------------------------------------------


async def _seed_tasks(url: str, owner: uuid.UUID, count: int, others: list[uuid.UUID]) -> int:
    from momentum_shared.db import create_engine
    from momentum_tasks.models import NO_DUE_DATE, TasksBase

    table = TasksBase.metadata.tables["tasks"]
    tags = TasksBase.metadata.tables["task_tags"]
    rng = random.Random(11)
    start = datetime(2023, 1, 1, tzinfo=UTC)
    engine = create_engine(url)
    written = 0
    try:
        async with engine.begin() as connection:
            for user, n in [(owner, count), *((other, max(1, count // 50)) for other in others)]:
                batch: list[dict[str, Any]] = []
                tag_rows: list[dict[str, Any]] = []
                for i in range(n):
                    created = start + timedelta(seconds=i * 97 + rng.randint(0, 60))
                    due = created + timedelta(days=rng.randint(1, 30)) if i % 3 else None
                    task_id = uuid.uuid4()
                    title = f"{' '.join(rng.sample(VOCABULARY, 3))} {i}".capitalize()
                    description = " ".join(rng.sample(VOCABULARY, 6)) if i % 2 else None
                    tag_list = ["bench"] if i % 5 == 0 else []
                    batch.append(
                        {
                            "id": task_id,
                            "owner_id": user,
                            "title": title,
                            "title_folded": title.lower(),
                            "description": description,
                            "status": "done" if i % 4 == 0 else "open",
                            "priority": ("low", "normal", "high")[i % 3],
                            "due_at": due,
                            "due_sort": due or NO_DUE_DATE,
                            "tags": tag_list,
                            "created_at": created,
                            "updated_at": created,
                            "completed_at": created if i % 4 == 0 else None,
                            "version": 1,
                        }
                    )
                    tag_rows += [{"owner_id": user, "tag": t, "task_id": task_id} for t in tag_list]
                    if len(batch) >= 2000:
                        await connection.execute(table.insert(), batch)
                        written += len(batch)
                        batch = []
                if batch:
                    await connection.execute(table.insert(), batch)
                    written += len(batch)
                if tag_rows:
                    await connection.execute(tags.insert(), tag_rows)
    finally:
        await engine.dispose()
    return written


async def _seed_analytics(url: str, histories: dict[uuid.UUID, int], today: date) -> int:
    """Daily rows and streak runs as the consumer would have left them."""
    from momentum_analytics.models import COMPLETION, LOGIN, AnalyticsBase
    from momentum_analytics.service import runs_of
    from momentum_shared.db import create_engine

    daily = AnalyticsBase.metadata.tables["daily_activity"]
    runs = AnalyticsBase.metadata.tables["streak_runs"]
    rng = random.Random(7)
    engine = create_engine(url)
    rows = 0
    try:
        async with engine.begin() as connection:
            for user, days in histories.items():
                activity: list[dict[str, Any]] = []
                for offset in range(days):
                    day = today - timedelta(days=offset)
                    if offset > 3 and rng.random() < 0.15:
                        continue  # some days off, so runs are realistic
                    activity.append(
                        {
                            "user_id": user,
                            "local_date": day,
                            "logins": rng.randint(0, 3),
                            "login_events": rng.randint(1, 5),
                            "tasks_created": rng.randint(0, 6),
                            "tasks_completed": rng.randint(1, 4),
                        }
                    )
                for chunk in range(0, len(activity), 1000):
                    await connection.execute(daily.insert(), activity[chunk : chunk + 1000])
                rows += len(activity)
                streaks = []
                for kind, key in ((LOGIN, "login_events"), (COMPLETION, "tasks_completed")):
                    for run in runs_of([row["local_date"] for row in activity if row[key] > 0]):
                        streaks.append(
                            {
                                "user_id": user,
                                "kind": kind,
                                "start_date": run.start,
                                "end_date": run.end,
                                "length": run.length,
                                "longest_before": run.longest_before,
                            }
                        )
                if streaks:
                    await connection.execute(runs.insert(), streaks)
    finally:
        await engine.dispose()
    return rows


# --- the stack ------------------------------------------------------------------------------


@contextlib.contextmanager
def stack(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    from momentum_devtools.natsserver import EmbeddedNats
    from momentum_devtools.testing.issuer import TestIssuer
    from momentum_shared.migrations import upgrade

    with contextlib.ExitStack() as exits:
        directory = exits.enter_context(workdir())
        tasks_db = exits.enter_context(database_url(args.db, "tasks", directory))
        analytics_db = exits.enter_context(database_url(args.db, "analytics", directory))
        upgrade(TASKS_INI, tasks_db)
        upgrade(ANALYTICS_INI, analytics_db)

        owner = uuid.uuid4()
        log(f"seeding {args.tasks} tasks ({args.db})")
        seeded = asyncio.run(
            _seed_tasks(tasks_db, owner, args.tasks, [uuid.uuid4() for _ in range(5)])
        )
        today = datetime.now(UTC).date()
        long_user, week_user = uuid.uuid4(), uuid.uuid4()
        log(f"seeding {args.days} days of analytics history")
        daily_rows = asyncio.run(
            _seed_analytics(
                analytics_db,
                {long_user: args.days, week_user: 7, **{uuid.uuid4(): 30 for _ in range(5)}},
                today,
            )
        )

        nats_server = EmbeddedNats(directory / "nats").start()
        exits.callback(nats_server.stop)
        issuer = TestIssuer()
        jwks = JwksServer(issuer.jwks())
        exits.callback(jwks.close)
        common = {"TOKEN_ISSUER": issuer.issuer, "JWKS_URL": jwks.url, "NATS_URL": nats_server.url}
        servers = {
            "tasks": Uvicorn(
                "tasks",
                "momentum_tasks.app:create_app",
                logdir=directory,
                env={
                    **{f"MOMENTUM_TASKS_{k}": v for k, v in common.items()},
                    "MOMENTUM_TASKS_DATABASE_URL": tasks_db,
                    "MOMENTUM_TASKS_NATS_USER": "tasks",
                    "MOMENTUM_TASKS_NATS_PASSWORD": nats_server.passwords["tasks"],
                    "MOMENTUM_TASKS_LOG_LEVEL": "WARNING",
                },
            ),
            "analytics": Uvicorn(
                "analytics",
                "momentum_analytics.app:create_app",
                logdir=directory,
                env={
                    **{f"MOMENTUM_ANALYTICS_{k}": v for k, v in common.items()},
                    "MOMENTUM_ANALYTICS_DATABASE_URL": analytics_db,
                    "MOMENTUM_ANALYTICS_NATS_USER": "analytics",
                    "MOMENTUM_ANALYTICS_NATS_PASSWORD": nats_server.passwords["analytics"],
                    # Reads only: the projection is seeded, nothing is consumed.
                    "MOMENTUM_ANALYTICS_CONSUMER_ENABLED": "false",
                    "MOMENTUM_ANALYTICS_LOG_LEVEL": "WARNING",
                },
            ),
            "hello": Uvicorn("hello", "hello:create_app", logdir=directory, app_dir=HELLO_DIR),
        }
        for server in servers.values():
            exits.callback(server.stop)
        servers["tasks"].wait_ready()
        servers["analytics"].wait_ready()
        servers["hello"].wait_ready("/hello")

        tasks_token = issuer.mint(owner, scope="tasks:read", lifetime=3600)
        tasks_url = servers["tasks"].url
        # Reach the deep page as a client does: follow next_cursor from page 1.
        deep = min(args.page, args.tasks // PAGE_SIZE)
        log(f"following next_cursor to page {deep}")
        cursor: str | None = None
        first_ids: list[str] = []
        for page in range(1, deep):
            url = f"{tasks_url}/tasks?limit={PAGE_SIZE}" + (f"&cursor={cursor}" if cursor else "")
            status, body = request_json("GET", url, tasks_token)
            assert status == 200, body
            if page == 1:
                first_ids = [item["id"] for item in body["items"]]
            cursor = body["next_cursor"]
            assert cursor, f"no next_cursor after page {page}"
        deep_url = f"{tasks_url}/tasks?limit={PAGE_SIZE}&cursor={cursor}"
        status, body = request_json("GET", deep_url, tasks_token)
        assert status == 200, body
        assert len(body["items"]) == PAGE_SIZE, body
        assert not set(first_ids) & {item["id"] for item in body["items"]}

        analytics_url = servers["analytics"].url
        weekly = f"{analytics_url}/analytics/reports/weekly"
        monthly = f"{analytics_url}/analytics/reports/monthly"
        long_token = issuer.mint(long_user, scope="analytics:read", lifetime=3600)
        week_token = issuer.mint(week_user, scope="analytics:read", lifetime=3600)
        status, report = request_json("GET", weekly, long_token)
        assert status == 200, report
        assert report["streaks"]["login"]["current"] >= 4, report
        status, report = request_json("GET", weekly, week_token)
        assert status == 200, report
        for token in (long_token, week_token):
            status, report = request_json("GET", monthly, token)
            assert status == 200, report

        search_url = f"{tasks_url}/tasks?limit={PAGE_SIZE}&sort=relevance&search=" + (
            SEARCH.replace(" ", "+")
        )
        status, body = request_json("GET", search_url, tasks_token)
        assert status == 200, body
        found = body["items"]
        assert found, body
        for item in found:
            text = f"{item['title']} {item['description'] or ''}".lower()
            assert "quarterly" in text, item
            assert " rep" in f" {text}", item

        yield {
            "loads": {
                "tasks_page_1": Load(
                    f"{tasks_url}/tasks?limit={PAGE_SIZE}",
                    headers={"Authorization": f"Bearer {tasks_token}"},
                ),
                "tasks_deep_page": Load(
                    deep_url, headers={"Authorization": f"Bearer {tasks_token}"}
                ),
                "tasks_search_page_1": Load(
                    search_url, headers={"Authorization": f"Bearer {tasks_token}"}
                ),
                "weekly_one_week": Load(weekly, headers={"Authorization": f"Bearer {week_token}"}),
                "weekly_long_history": Load(
                    weekly, headers={"Authorization": f"Bearer {long_token}"}
                ),
                "monthly_one_week": Load(
                    monthly, headers={"Authorization": f"Bearer {week_token}"}
                ),
                "monthly_long_history": Load(
                    monthly, headers={"Authorization": f"Bearer {long_token}"}
                ),
                "hello": Load(f"{servers['hello'].url}/hello"),
            },
            "pids": {name: server.pid for name, server in servers.items()},
            "deep_page": deep,
            "search_matches": len(found),
            "tasks_seeded": seeded,
            "daily_rows": daily_rows,
        }


_PROCESS = {
    "tasks_page_1": "tasks",
    "tasks_deep_page": "tasks",
    "tasks_search_page_1": "tasks",
    "hello": "hello",
}


def _profile(args: argparse.Namespace, load: Load, pid: int) -> None:
    seconds = max(5, round(args.duration * 3))
    spy = subprocess.Popen(
        [
            os.environ.get("PY_SPY", "py-spy"),
            "record",
            "-p",
            str(pid),
            "-d",
            str(seconds),
            "-r",
            "200",
            "-f",
            "raw",
            "-o",
            str(args.profile_out),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    run_load(load, connections=args.connections, duration=seconds + 1, loadgen=args.loadgen)
    spy.wait(timeout=60)
    log(f"profile of {args.profile} written to {args.profile_out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000, help="tasks of the measured user")
    parser.add_argument("--days", type=int, default=3 * 365, help="days of analytics history")
    parser.add_argument("--page", type=int, default=500, help="the deep page")
    parser.add_argument(
        "--connections", type=int, default=int(os.environ.get("BENCH_CONNECTIONS", 4))
    )
    parser.add_argument(
        "--duration", type=float, default=float(os.environ.get("BENCH_DURATION", 2))
    )
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", 5)))
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument(
        "--profile",
        choices=SIDES,
        help="after the rounds, load this side once more under py-spy (PY_SPY, default py-spy)"
        " and write the raw profile to --profile-out",
    )
    parser.add_argument("--profile-out", type=Path, default=Path("growth-profile.txt"))
    standard_arguments(parser)
    args = parser.parse_args()
    if args.quick:
        args.tasks, args.days, args.rounds, args.duration = 2_000, 60, 1, 1.0

    with stack(args) as target:
        loads: dict[str, Load] = target["loads"]
        pids: dict[str, int] = target["pids"]

        def measure(side: str) -> Result:
            return run_load(
                loads[side],
                connections=args.connections,
                duration=args.duration,
                loadgen=args.loadgen,
                watch=pids,
            )

        if not args.quick:
            log("warming up")
            for side in SIDES:
                run_load(
                    loads[side], connections=args.connections, duration=1.0, loadgen=args.loadgen
                )
        runs: dict[str, list[Result]] = {side: [] for side in SIDES}
        for round_no in range(args.rounds):
            shift = round_no % len(SIDES)
            for side in [*SIDES[shift:], *SIDES[:shift]]:
                result = measure(side)
                runs[side].append(result)
                log(
                    f"round {round_no + 1} {side}: {result.rps:.0f} req/s, "
                    f"p50 {result.p50_ms:.2f} ms, errors {result.errors}"
                )

        if args.profile:
            _profile(args, loads[args.profile], pids[_PROCESS.get(args.profile, "analytics")])

    def figures(side: str, process: str) -> dict[str, Any]:
        served = sum(r.requests for r in runs[side])
        used = sum(r.cpu.get(process, 0.0) for r in runs[side])
        return {
            "rps": round(median([r.rps for r in runs[side]]), 1),
            "p50_ms": round(median([r.p50_ms for r in runs[side]]), 3),
            "p99_ms": round(median([r.p99_ms for r in runs[side]]), 3),
            "cpu_us_per_request": round(used / served * 1e6, 1) if served else 0.0,
            "errors": sum(r.errors for r in runs[side]),
        }

    by_side = {side: figures(side, _PROCESS.get(side, "analytics")) for side in SIDES}

    def growth(small: str, large: str, target: float = GROWTH_TARGET) -> dict[str, Any]:
        # Cost ratio: how many times slower the large side is (1.0 = no growth).
        value = ratio(by_side[small]["rps"], by_side[large]["rps"])
        return {
            "baseline": small,
            "measured": large,
            "ratio": value,
            "target": f"<= {target}",
            "met": value is not None and value <= target,
        }

    weekly_vs_hello = ratio(by_side["weekly_long_history"]["rps"], by_side["hello"]["rps"])
    report = {
        "benchmark": "growth",
        "database": args.db,
        "figures": by_side,
        "targets": {
            "tasks_deep_page_vs_page_1": growth("tasks_page_1", "tasks_deep_page"),
            "weekly_long_history_vs_one_week": growth("weekly_one_week", "weekly_long_history"),
            "tasks_search_vs_page_1": growth("tasks_page_1", "tasks_search_page_1", SEARCH_TARGET),
            "monthly_long_history_vs_one_week": growth("monthly_one_week", "monthly_long_history"),
            "weekly_vs_hello": {
                "baseline": "hello",
                "measured": "weekly_long_history",
                "ratio": weekly_vs_hello,
                "target": f">= {HELLO_TARGET}",
                "met": weekly_vs_hello is not None and weekly_vs_hello >= HELLO_TARGET,
            },
        },
        "errors": sum(r["errors"] for r in by_side.values()),
        "config": {
            "tasks_seeded": target["tasks_seeded"],
            "deep_page": target["deep_page"],
            "page_size": PAGE_SIZE,
            "search": SEARCH,
            "search_matches_on_page_1": target["search_matches"],
            "history_days": args.days,
            "daily_activity_rows": target["daily_rows"],
            "connections": args.connections,
            "duration_s": args.duration,
            "rounds": args.rounds,
            "statistic": "median of alternated rounds; growth ratio = rps(small) / rps(large)",
            "baseline_server": "bench/hotpath/hello.py (bare FastAPI hello), uvicorn uvloop +"
            " httptools, access log off, 1 worker",
            "quick": args.quick,
        },
        "machine": machine(),
    }
    emit(report)


if __name__ == "__main__":
    main()
