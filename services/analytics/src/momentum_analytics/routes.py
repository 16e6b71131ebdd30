"""HTTP routes of analytics: the caller's streaks and weekly report (docs/spec/analytics.md)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from momentum_analytics import goals, reports, service
from momentum_analytics.dependencies import ReaderDep, ReadRepositoryDep, RepositoryDep, WriterDep
from momentum_analytics.schemas import (
    Calendar,
    GoalsPublic,
    GoalsUpdate,
    MonthlyReport,
    RangeReport,
    StreaksPublic,
    WeeklyReport,
)
from momentum_shared.bodies import BearerFirstRoute
from momentum_shared.openapi import examples
from momentum_shared.state import NowDep

# YYYY-Www for years 0001 to 9999 and weeks 01 to 53.
WEEK_PATTERN = r"^(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})-W(0[1-9]|[1-4][0-9]|5[0-3])$"
MONTH_PATTERN = r"^(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})-(0[1-9]|1[0-2])$"
PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}

STREAK_EXAMPLE: dict[str, Any] = {"current": 3, "longest": 9, "last_active_date": "2026-12-02"}
STREAKS_EXAMPLE: dict[str, Any] = {
    "user_id": "9b2f6d1e-3c4a-4e5f-8a7b-1c2d3e4f5a6b",
    "timezone": "Europe/Berlin",
    "today": "2026-12-02",
    "login": STREAK_EXAMPLE,
    "completion": {"current": 2, "longest": 5, "last_active_date": "2026-12-02"},
}
_DAYS = [
    {"date": f"2026-11-{day}", "logins": logins, "tasks_created": created, "tasks_completed": done}
    for day, logins, created, done in (
        (23, 1, 2, 1),
        (24, 1, 0, 1),
        (25, 0, 0, 0),
        (26, 2, 3, 2),
        (27, 1, 1, 1),
        (28, 0, 0, 0),
        (29, 0, 0, 0),
    )
]
_TOTALS: dict[str, Any] = {
    "logins": 5,
    "tasks_created": 6,
    "tasks_completed": 5,
    "active_days": 4,
    "completed_on_time": 3,
    "completed_late": 1,
    "completed_undated": 1,
    "completed_by_priority": {"low": 1, "normal": 3, "high": 1},
}
_PREVIOUS_TOTALS: dict[str, Any] = {
    "logins": 3,
    "tasks_created": 4,
    "tasks_completed": 2,
    "active_days": 3,
    "completed_on_time": 1,
    "completed_late": 0,
    "completed_undated": 1,
    "completed_by_priority": {"low": 0, "normal": 2, "high": 0},
}
WEEKLY_EXAMPLE: dict[str, Any] = {
    "user_id": "9b2f6d1e-3c4a-4e5f-8a7b-1c2d3e4f5a6b",
    "week": "2026-W48",
    "timezone": "Europe/Berlin",
    "start_date": "2026-11-23",
    "end_date": "2026-11-29",
    "totals": _TOTALS,
    "days": _DAYS,
    "streaks": {
        "login": STREAK_EXAMPLE,
        "completion": {"current": 2, "longest": 5, "last_active_date": "2026-12-02"},
    },
    "previous_week": {"week": "2026-W47", "totals": _PREVIOUS_TOTALS},
    "generated_at": "2026-12-02T10:00:00Z",
}
MONTHLY_EXAMPLE: dict[str, Any] = {
    "user_id": "9b2f6d1e-3c4a-4e5f-8a7b-1c2d3e4f5a6b",
    "month": "2026-11",
    "timezone": "Europe/Berlin",
    "start_date": "2026-11-01",
    "end_date": "2026-11-30",
    "totals": _TOTALS,
    "days": [
        {"date": f"2026-11-{day:02d}", "logins": 0, "tasks_created": 0, "tasks_completed": 0}
        for day in range(1, 23)
    ]
    + _DAYS
    + [{"date": "2026-11-30", "logins": 0, "tasks_created": 0, "tasks_completed": 0}],
    "streaks": WEEKLY_EXAMPLE["streaks"],
    "previous_month": {"month": "2026-10", "totals": _PREVIOUS_TOTALS},
    "generated_at": "2026-12-02T10:00:00Z",
}
RANGE_EXAMPLE: dict[str, Any] = {
    "from": "2026-11-25",
    "to": "2026-12-02",
    "group": "week",
    "timezone": "Europe/Berlin",
    "buckets": [
        {
            "start": "2026-11-25",
            "end": "2026-11-29",
            "logins": 3,
            "tasks_created": 4,
            "tasks_completed": 3,
            "active_days": 2,
        },
        {
            "start": "2026-11-30",
            "end": "2026-12-02",
            "logins": 2,
            "tasks_created": 2,
            "tasks_completed": 2,
            "active_days": 2,
        },
    ],
    "totals": _TOTALS,
}
CALENDAR_EXAMPLE: dict[str, Any] = {
    "year": 2026,
    "timezone": "Europe/Berlin",
    "days": [
        {"date": "2026-01-01", "tasks_completed": 0, "tasks_created": 0, "logins": 0, "level": 0},
        {"date": "2026-01-02", "tasks_completed": 4, "tasks_created": 2, "logins": 1, "level": 3},
    ],
}

GOALS_EXAMPLE: dict[str, Any] = {
    "daily_tasks": 3,
    "weekly_tasks": 15,
    "daily_goal": {"current": 2, "longest": 6, "met_today": True},
    "weekly_goal": {"current": 1, "longest": 4, "met_this_week": False},
}

router = APIRouter(
    prefix="/analytics",
    route_class=BearerFirstRoute,
    tags=["analytics"],
    responses={
        401: {"description": "missing, invalid or expired bearer token", **PROBLEM},
        403: {"description": "the token lacks the route's scope", **PROBLEM},
        503: {"description": "the database cannot be reached", **PROBLEM},
    },
)


@router.get(
    "/streaks",
    operation_id="analytics.streaks",
    response_model=StreaksPublic,
    openapi_extra=examples(response=STREAKS_EXAMPLE),
)
async def get_streaks(claims: ReaderDep, repo: ReadRepositoryDep, now: NowDep) -> StreaksPublic:
    """The caller's login and completion streaks as of today in the caller's timezone."""
    return await service.get_streaks(
        repo, user_id=claims.user_id, token_timezone=claims.timezone, now=now
    )


@router.get(
    "/reports/weekly",
    operation_id="analytics.weekly_report",
    openapi_extra=examples(response=WEEKLY_EXAMPLE),
    response_model=WeeklyReport,
    responses={422: {"description": "a malformed week, or one that starts after today", **PROBLEM}},
)
async def get_weekly_report(
    claims: ReaderDep,
    repo: ReadRepositoryDep,
    now: NowDep,
    week: Annotated[
        str | None,
        Query(
            description=(
                "ISO week YYYY-Www; default the week that contains today. 422 for week 53"
                " of a year without one, or a week that starts after today"
            ),
            # Documented only: the service says which of the two is wrong, in its own 422.
            json_schema_extra={"pattern": WEEK_PATTERN},
        ),
    ] = None,
) -> WeeklyReport:
    """The caller's activity in one ISO week, with the week before and the streaks."""
    return await service.get_weekly_report(
        repo, user_id=claims.user_id, token_timezone=claims.timezone, week=week, now=now
    )


@router.get(
    "/goals",
    operation_id="analytics.get_goals",
    response_model=GoalsPublic,
    openapi_extra=examples(response=GOALS_EXAMPLE),
)
async def get_goals(claims: ReaderDep, repo: ReadRepositoryDep, now: NowDep) -> GoalsPublic:
    """The caller's goals in effect today, with the daily and weekly goal streaks."""
    return await goals.get_goals(
        repo, user_id=claims.user_id, token_timezone=claims.timezone, now=now
    )


@router.put(
    "/goals",
    operation_id="analytics.set_goals",
    response_model=GoalsPublic,
    openapi_extra=examples(request={"daily_tasks": 3, "weekly_tasks": 15}, response=GOALS_EXAMPLE),
    responses={
        403: {"description": "the token lacks the analytics:write scope", **PROBLEM},
        422: {"description": "a goal out of range (daily 1 to 100, weekly 1 to 1000)", **PROBLEM},
    },
)
async def put_goals(
    body: GoalsUpdate, claims: WriterDep, repo: RepositoryDep, now: NowDep
) -> GoalsPublic:
    """Set the caller's goals from today on (null: no goal); earlier days keep theirs."""
    return await goals.set_goals(
        repo, user_id=claims.user_id, token_timezone=claims.timezone, goals=body, now=now
    )


@router.get(
    "/reports/monthly",
    operation_id="analytics.monthly_report",
    openapi_extra=examples(response=MONTHLY_EXAMPLE),
    response_model=MonthlyReport,
    responses={
        422: {"description": "a malformed month, or one after the current month", **PROBLEM}
    },
)
async def get_monthly_report(
    claims: ReaderDep,
    repo: ReadRepositoryDep,
    now: NowDep,
    month: Annotated[
        str | None,
        Query(
            description="month YYYY-MM; default the current month. 422 after the current month",
            json_schema_extra={"pattern": MONTH_PATTERN},
        ),
    ] = None,
) -> MonthlyReport:
    """The caller's activity in one calendar month, with the month before and the streaks."""
    return await reports.get_monthly_report(
        repo, user_id=claims.user_id, token_timezone=claims.timezone, month=month, now=now
    )


@router.get(
    "/reports",
    operation_id="analytics.range_report",
    openapi_extra=examples(response=RANGE_EXAMPLE),
    response_model=RangeReport,
    responses={
        422: {
            "description": "a malformed date or group, from after to, or more than 366 days",
            **PROBLEM,
        }
    },
)
async def get_range_report(
    claims: ReaderDep,
    repo: ReadRepositoryDep,
    start: Annotated[dt.date, Query(alias="from", description="first day, YYYY-MM-DD")],
    end: Annotated[dt.date, Query(alias="to", description="last day (inclusive), YYYY-MM-DD")],
    group: Annotated[
        Literal["day", "week", "month"],
        Query(description="bucket size: days, ISO weeks or calendar months, clipped to the range"),
    ] = "day",
) -> RangeReport:
    """The caller's activity from one day to another (at most 366 days), in buckets."""
    return await reports.get_range_report(
        repo,
        user_id=claims.user_id,
        token_timezone=claims.timezone,
        start=start,
        end=end,
        group=group,
    )


@router.get(
    "/calendar",
    operation_id="analytics.calendar",
    openapi_extra=examples(response=CALENDAR_EXAMPLE),
    response_model=Calendar,
    responses={422: {"description": "a malformed year", **PROBLEM}},
)
async def get_calendar(
    claims: ReaderDep,
    repo: ReadRepositoryDep,
    now: NowDep,
    year: Annotated[
        int | None, Query(ge=1, le=9999, description="the year; default the current year")
    ] = None,
) -> Calendar:
    """Every day of a year with its counts and a level 0 to 4, like a contributions calendar."""
    return await reports.get_calendar(
        repo, user_id=claims.user_id, token_timezone=claims.timezone, year=year, now=now
    )
