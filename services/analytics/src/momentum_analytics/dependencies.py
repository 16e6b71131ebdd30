"""FastAPI dependency aliases of the analytics service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from momentum_analytics.repository import AnalyticsRepository
from momentum_shared.db import SessionDep
from momentum_shared.security import Claims, RequireScope
from momentum_shared.state import request_state

ReaderDep = Annotated[Claims, Depends(RequireScope("analytics:read"))]
WriterDep = Annotated[Claims, Depends(RequireScope("analytics:write"))]


async def get_repository(session: SessionDep) -> AnalyticsRepository:
    return AnalyticsRepository(session)


RepositoryDep = Annotated[AnalyticsRepository, Depends(get_repository)]

# The reads' sessions, per engine: the app's engine in autocommit (it shares the pool).
_READERS: dict[int, tuple[AsyncEngine, async_sessionmaker[AsyncSession]]] = {}


def _read_sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    known = _READERS.get(id(engine))
    if known is None or known[0] is not engine:
        if len(_READERS) > 16:  # apps come and go in tests: never hold more than a few
            _READERS.clear()
        autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        known = (
            engine,
            async_sessionmaker(autocommit, class_=AsyncSession, expire_on_commit=False),
        )
        _READERS[id(engine)] = known
    return known[1]


async def get_read_repository(request: Request) -> AsyncIterator[AnalyticsRepository]:
    """A repository for a request that only reads: no BEGIN, no COMMIT.

    The statements run in autocommit: each one is a single indexed read, and a report's
    statements read projections that only ever move forward, so they need no shared
    transaction (PostgreSQL's READ COMMITTED would give each its own snapshot anyway).
    """
    async with _read_sessions(request_state(request).engine)() as session:
        yield AnalyticsRepository(session)


ReadRepositoryDep = Annotated[AnalyticsRepository, Depends(get_read_repository)]
