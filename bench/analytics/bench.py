"""Latency of the analytics routes for a user with a year (or more) of daily activity.

200 users x 365 days of projection rows (the user asked about is one of them), with goals
and goal runs, the app in-process over httpx's ASGITransport with a real RS256 token,
consumer off. Every route is measured for that user and for a user with one week of
history (the answers must cost the same). Prints JSON: the median and p95 of N sequential
requests per route, and the same for /healthz as a floor.

    .venv/bin/python bench/analytics/bench.py [--db sqlite|postgresql|all]
        [--days 1095] [--quick]

``--quick`` (5 users x 30 days, 5 requests per route) only proves that the benchmark runs:
``make test`` runs it so that it never rots; its figures mean nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from momentum_analytics.app import create_app
from momentum_analytics.models import (
    COMPLETION,
    DAILY_GOAL,
    LOGIN,
    WEEKLY_GOAL,
    AnalyticsBase,
)
from momentum_analytics.service import runs_of
from momentum_analytics.settings import AnalyticsSettings
from momentum_devtools.testing.apps import running_app
from momentum_devtools.testing.issuer import TestIssuer
from momentum_devtools.testing.resources import LOCAL_POSTGRES_URL, asyncpg_url, created_database
from momentum_shared.db import create_engine
from momentum_shared.migrations import upgrade

ONE_WEEK = timedelta(days=7)
DAILY_TARGET, WEEKLY_TARGET = 2, 8
ALEMBIC_INI = Path(__file__).resolve().parents[2] / "services" / "analytics" / "alembic.ini"
TODAY = date(2026, 11, 26)


@contextlib.contextmanager
def database(dialect: str) -> Iterator[str]:
    if dialect == "sqlite":
        with tempfile.TemporaryDirectory() as directory:
            yield f"sqlite+aiosqlite:///{directory}/analytics.db"
        return
    name = f"momentum_bench_{uuid.uuid4().hex[:12]}"
    with created_database(LOCAL_POSTGRES_URL, name) as url:
        yield asyncpg_url(url)


async def load(url: str, users: list[uuid.UUID], days: int) -> int:
    """Daily rows and streak runs as the consumer would have left them (bulk, for speed)."""
    daily = AnalyticsBase.metadata.tables["daily_activity"]
    runs = AnalyticsBase.metadata.tables["streak_runs"]
    goals = AnalyticsBase.metadata.tables["goals"]
    rng = random.Random(7)
    engine = create_engine(url)
    rows = 0
    try:
        async with engine.begin() as connection:
            for user in users:
                activity: list[dict[str, Any]] = []
                for offset in range(days):
                    day = TODAY - timedelta(days=offset)
                    if rng.random() < 0.15:
                        continue  # some days off, so runs are realistic
                    activity.append(
                        {
                            "user_id": user,
                            "local_date": day,
                            "logins": rng.randint(0, 3),
                            "login_events": rng.randint(1, 5),
                            "tasks_created": rng.randint(0, 6),
                            "tasks_completed": rng.randint(0, 4),
                        }
                    )
                await connection.execute(daily.insert(), activity)
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
                # A goal set on the first day; the goal runs it gives.
                first = TODAY - timedelta(days=days - 1)
                await connection.execute(
                    goals.insert(),
                    [
                        {
                            "user_id": user,
                            "effective_date": first,
                            "daily_tasks": DAILY_TARGET,
                            "weekly_tasks": WEEKLY_TARGET,
                            "set_at": datetime(first.year, first.month, first.day, tzinfo=UTC),
                        }
                    ],
                )
                met = [row["local_date"] for row in activity if row["tasks_completed"] >= 2]
                weeks: dict[date, int] = {}
                for row in activity:
                    monday = row["local_date"] - timedelta(days=row["local_date"].weekday())
                    weeks[monday] = weeks.get(monday, 0) + row["tasks_completed"]
                met_weeks = sorted(monday for monday, total in weeks.items() if total >= 8)
                for kind, spans in (
                    (DAILY_GOAL, [(run.start, run.end) for run in runs_of(met)]),
                    (WEEKLY_GOAL, week_spans(met_weeks)),
                ):
                    longest = 0
                    for start, end in spans:
                        step = ONE_WEEK if kind == WEEKLY_GOAL else timedelta(days=1)
                        length = (end - start) // step + 1
                        streaks.append(
                            {
                                "user_id": user,
                                "kind": kind,
                                "start_date": start,
                                "end_date": end,
                                "length": length,
                                "longest_before": longest,
                            }
                        )
                        longest = max(longest, length)
                await connection.execute(runs.insert(), streaks)
    finally:
        await engine.dispose()
    return rows


def week_spans(mondays: list[date]) -> list[tuple[date, date]]:
    """Maximal runs of consecutive Mondays."""
    spans: list[tuple[date, date]] = []
    for monday in mondays:
        if spans and spans[-1][1] == monday - ONE_WEEK:
            spans[-1] = (spans[-1][0], monday)
        else:
            spans.append((monday, monday))
    return spans


async def measure(
    client: httpx.AsyncClient, targets: dict[str, tuple[str, dict[str, str]]], n: int
) -> dict[str, dict[str, float]]:
    """Round-robin over the targets, so machine noise falls on all of them alike."""
    for path, headers in targets.values():
        for _ in range(20):  # warm-up: JWKS, compiled statements, pool
            assert (await client.get(path, headers=headers)).status_code == 200
    samples: dict[str, list[float]] = {name: [] for name in targets}
    for _ in range(n):
        for name, (path, headers) in targets.items():
            start = time.perf_counter()
            response = await client.get(path, headers=headers)
            samples[name].append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, response.text
    result = {}
    for name, values in samples.items():
        values.sort()
        result[name] = {
            "median_ms": round(statistics.median(values), 3),
            "p95_ms": round(values[int(len(values) * 0.95) - 1], 3),
            "mean_ms": round(statistics.fmean(values), 3),
        }
    return result


async def run(url: str, dialect: str, n_users: int, days: int, requests: int) -> dict[str, object]:
    users = [uuid.uuid4() for _ in range(n_users)]
    rows = await load(url, users, days)
    newcomer = uuid.uuid4()  # a week of history: the report should cost the same
    rows += await load(url, [newcomer], 7)
    yearling = uuid.uuid4()  # a year: as many rows in this year's answers as the long user
    rows += await load(url, [yearling], 365)
    issuer = TestIssuer()
    settings = AnalyticsSettings(
        database_url=url,
        consumer_enabled=False,
        token_issuer=issuer.issuer,
        log_level="WARNING",
    )
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    app = create_app(settings, jwks_client=issuer.client(), clock=lambda: now)
    user = users[n_users // 2]
    headers = issuer.bearer(user, tz="Europe/Berlin")
    week_user = issuer.bearer(newcomer, tz="Europe/Berlin")
    year_user = issuer.bearer(yearling, tz="Europe/Berlin")
    routes = {
        "weekly_report": "/analytics/reports/weekly?week=2026-W48",
        "monthly_report": "/analytics/reports/monthly?month=2026-11",
        "range_report_366_days_by_week": (
            "/analytics/reports?from=2025-11-26&to=2026-11-26&group=week"
        ),
        "calendar": "/analytics/calendar?year=2026",
        "goals": "/analytics/goals",
        "streaks": "/analytics/streaks",
    }
    targets: dict[str, tuple[str, dict[str, str]]] = {}
    for name, path in routes.items():
        targets[name] = (path, headers)
        targets[f"{name}_user_with_one_week_of_history"] = (path, week_user)
        targets[f"{name}_user_with_one_year_of_history"] = (path, year_user)
    targets["healthz_floor"] = ("/healthz", {})
    async with running_app(app) as client:
        timings = await measure(client, targets, requests)
        body = (await client.get("/analytics/reports/weekly?week=2026-W48", headers=headers)).json()
    # The target: a user with the whole history answers within 1.5x of one with a week.
    ratios = {
        name: round(
            timings[name]["median_ms"]
            / timings[f"{name}_user_with_one_week_of_history"]["median_ms"],
            3,
        )
        for name in routes
    }
    return {
        "benchmark": "analytics route latency (in-process, ASGITransport)",
        "dialect": dialect,
        "users": n_users,
        "days_per_user": days,
        "daily_activity_rows": rows,
        "requests": requests,
        **timings,
        "ratio_to_one_week_of_history": ratios,
        "target": TARGET_RATIO,
        "met": all(value <= TARGET_RATIO for value in ratios.values()),
        "sample_longest_login_streak": body["streaks"]["login"]["longest"],
    }


TARGET_RATIO = 1.5


def measure_dialect(dialect: str, args: argparse.Namespace) -> dict[str, object]:
    # Databases are created and migrated outside the event loop (their helpers run their own).
    with database(dialect) as url:
        upgrade(ALEMBIC_INI, url)
        return asyncio.run(run(url, dialect, args.users, args.days, args.requests))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--db", "--dialect", dest="dialect", choices=["sqlite", "postgresql", "all"], default="all"
    )
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--quick", action="store_true", help="a few users, days and requests")
    args = parser.parse_args()
    if args.quick:
        args.users, args.days, args.requests = 5, 30, 5
    if args.dialect != "all":
        result: dict[str, object] = measure_dialect(args.dialect, args)
    else:
        result = {"sqlite": measure_dialect("sqlite", args)}
        try:
            result["postgresql"] = measure_dialect("postgresql", args)
        except OSError as exc:  # no local PostgreSQL: say so instead of failing the run
            result["postgresql"] = {"skipped": f"{type(exc).__name__}: {exc}"}
    sys.stdout.write(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
