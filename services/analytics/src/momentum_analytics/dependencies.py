"""FastAPI dependency aliases of the analytics service."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

from momentum_analytics.repository import AnalyticsRepository
from momentum_analytics.state import analytics_state
from momentum_shared.db import SessionDep
from momentum_shared.security import Claims, RequireScope

AnalyticsReader = Annotated[Claims, Depends(RequireScope("analytics:read"))]


async def get_repository(session: SessionDep) -> AnalyticsRepository:
    return AnalyticsRepository(session)


async def get_now(request: Request) -> datetime:
    """The current instant from the app's clock (tests fix it to pin "today")."""
    return analytics_state(request).clock()


RepositoryDep = Annotated[AnalyticsRepository, Depends(get_repository)]
NowDep = Annotated[datetime, Depends(get_now)]
