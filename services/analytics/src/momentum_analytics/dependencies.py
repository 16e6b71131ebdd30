"""FastAPI dependency aliases of the analytics service."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from momentum_analytics.repository import AnalyticsRepository
from momentum_shared.db import ReadSessionDep, SessionDep
from momentum_shared.security import Claims, RequireScope

ReaderDep = Annotated[Claims, Depends(RequireScope("analytics:read"))]
WriterDep = Annotated[Claims, Depends(RequireScope("analytics:write"))]


async def get_repository(session: SessionDep) -> AnalyticsRepository:
    return AnalyticsRepository(session)


RepositoryDep = Annotated[AnalyticsRepository, Depends(get_repository)]


async def get_read_repository(session: ReadSessionDep) -> AnalyticsRepository:
    """A repository for a request that only reads: no BEGIN, no COMMIT.

    Each of a report's statements is a single indexed read of projections that only ever
    move forward, so they need no transaction in common (momentum_shared.db.ReadSessionDep).
    """
    return AnalyticsRepository(session)


ReadRepositoryDep = Annotated[AnalyticsRepository, Depends(get_read_repository)]
