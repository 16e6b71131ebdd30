"""HTTP routes of analytics: the caller's streaks and weekly report (docs/spec/analytics.md)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from momentum_analytics import goals, service
from momentum_analytics.dependencies import ReaderDep, ReadRepositoryDep, RepositoryDep, WriterDep
from momentum_analytics.schemas import GoalsPublic, GoalsUpdate, StreaksPublic, WeeklyReport
from momentum_shared.bodies import BearerFirstRoute
from momentum_shared.openapi import examples
from momentum_shared.state import NowDep

# YYYY-Www for years 0001 to 9999 and weeks 01 to 53.
WEEK_PATTERN = r"^(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})-W(0[1-9]|[1-4][0-9]|5[0-3])$"
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
WEEKLY_EXAMPLE: dict[str, Any] = {
    "user_id": "9b2f6d1e-3c4a-4e5f-8a7b-1c2d3e4f5a6b",
    "week": "2026-W48",
    "timezone": "Europe/Berlin",
    "start_date": "2026-11-23",
    "end_date": "2026-11-29",
    "totals": {"logins": 5, "tasks_created": 6, "tasks_completed": 5, "active_days": 4},
    "days": _DAYS,
    "streaks": {
        "login": STREAK_EXAMPLE,
        "completion": {"current": 2, "longest": 5, "last_active_date": "2026-12-02"},
    },
    "previous_week": {
        "week": "2026-W47",
        "totals": {"logins": 3, "tasks_created": 4, "tasks_completed": 2, "active_days": 3},
    },
    "generated_at": "2026-12-02T10:00:00Z",
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
