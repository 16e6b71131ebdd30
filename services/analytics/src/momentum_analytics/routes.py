"""HTTP routes of analytics: the caller's streaks and weekly report (docs/spec/analytics.md)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from momentum_analytics import service
from momentum_analytics.dependencies import AnalyticsReader, NowDep, RepositoryDep
from momentum_analytics.schemas import StreaksPublic, WeeklyReport
from momentum_shared.bodies import BearerFirstRoute

# YYYY-Www for years 0001 to 9999 and weeks 01 to 53.
WEEK_PATTERN = r"^(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})-W(0[1-9]|[1-4][0-9]|5[0-3])$"
PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}

router = APIRouter(
    prefix="/analytics",
    route_class=BearerFirstRoute,
    tags=["analytics"],
    responses={
        401: {"description": "missing, invalid or expired bearer token", **PROBLEM},
        403: {"description": "the token lacks the analytics:read scope", **PROBLEM},
        503: {"description": "the database cannot be reached", **PROBLEM},
    },
)


@router.get("/streaks", operation_id="analytics.streaks", response_model=StreaksPublic)
async def get_streaks(claims: AnalyticsReader, repo: RepositoryDep, now: NowDep) -> StreaksPublic:
    """The caller's login and completion streaks as of today in the token's timezone."""
    return await service.get_streaks(
        repo, user_id=claims.user_id, timezone=claims.timezone, now=now
    )


@router.get(
    "/reports/weekly",
    operation_id="analytics.weekly_report",
    response_model=WeeklyReport,
    responses={422: {"description": "a malformed week, or one that starts after today", **PROBLEM}},
)
async def get_weekly_report(
    claims: AnalyticsReader,
    repo: RepositoryDep,
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
        repo, user_id=claims.user_id, timezone=claims.timezone, week=week, now=now
    )
