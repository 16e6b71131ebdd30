"""HTTP routes of analytics: the caller's streaks and weekly report (docs/spec/analytics.md)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from momentum_analytics import service
from momentum_analytics.dependencies import ReaderDep, RepositoryDep
from momentum_analytics.schemas import StreaksPublic, WeeklyReport
from momentum_shared.bodies import BearerFirstRoute
from momentum_shared.state import NowDep

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


@router.get("/streaks", response_model=StreaksPublic)
async def get_streaks(claims: ReaderDep, repo: RepositoryDep, now: NowDep) -> StreaksPublic:
    """The caller's login and completion streaks as of today in the token's timezone."""
    return await service.get_streaks(
        repo, user_id=claims.user_id, timezone=claims.timezone, now=now
    )


@router.get(
    "/reports/weekly",
    response_model=WeeklyReport,
    responses={422: {"description": "a malformed week, or one that starts after today", **PROBLEM}},
)
async def get_weekly_report(
    claims: ReaderDep,
    repo: RepositoryDep,
    now: NowDep,
    week: Annotated[
        str | None,
        Query(description="ISO week YYYY-Www; default the week that contains today"),
    ] = None,
) -> WeeklyReport:
    """The caller's activity in one ISO week, with the week before and the streaks."""
    return await service.get_weekly_report(
        repo, user_id=claims.user_id, timezone=claims.timezone, week=week, now=now
    )
