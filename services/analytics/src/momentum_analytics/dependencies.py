"""FastAPI dependency aliases of the analytics service."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from momentum_analytics.repository import AnalyticsRepository
from momentum_shared.db import SessionDep
from momentum_shared.security import Claims, RequireScope

ReaderDep = Annotated[Claims, Depends(RequireScope("analytics:read"))]


async def get_repository(session: SessionDep) -> AnalyticsRepository:
    return AnalyticsRepository(session)


RepositoryDep = Annotated[AnalyticsRepository, Depends(get_repository)]
