"""One lifespan for every service: the database, background workers, periodic jobs.

Each service's lifespan opens ``service_lifespan(app, settings)``, which creates the
engine and session factory and gates ``/readyz`` on the database, then starts its
workers with ``runtime.start(...)``; on shutdown every worker is cancelled, awaited and
closed the same way, in reverse order, before the engine is disposed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from momentum_shared.db import check_database, create_engine, create_session_factory
from momentum_shared.events import format_utc, utcnow
from momentum_shared.health import Readiness
from momentum_shared.settings import DatabaseSettings
from momentum_shared.state import shared_state

logger = logging.getLogger("momentum.lifespan")

Status = dict[str, Any]
"""A worker's readiness block: ``status`` ("ok" or "degraded") first, then its details."""


def worker_status(ok: bool, **details: Any) -> Status:
    """The one shape of a background worker's ``/readyz`` block."""
    return {"status": "ok" if ok else "degraded", **details}


class BackgroundWorker(Protocol):
    """Something a process runs beside its requests until shutdown."""

    async def run(self) -> None:
        """Work until cancelled (surviving outages by itself)."""

    async def aclose(self) -> None:
        """Release what ``run`` held (connections, leases); called after ``run`` ended."""

    def status(self) -> Status:
        """A snapshot for ``/readyz`` (never raises)."""


class PeriodicJob:
    """A job run every ``interval_seconds``; a failure is logged with the job's name and
    the job runs again after ``retry_seconds`` (default: the interval)."""

    def __init__(
        self,
        name: str,
        job: Callable[[], Awaitable[object]],
        *,
        interval_seconds: float,
        retry_seconds: float | None = None,
        failed_before: bool = False,
    ) -> None:
        self.name = name
        self.job = job
        self.interval_seconds = interval_seconds
        self.retry_seconds = interval_seconds if retry_seconds is None else retry_seconds
        self._failed = failed_before
        self._last_error: str | None = None
        self._last_run_at: datetime | None = None

    async def run_once(self) -> bool:
        """Run the job now; False (logged) when it failed."""
        try:
            await self.job()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._failed = True
            self._last_error = type(exc).__name__
            logger.warning(
                "periodic job failed", extra={"job": self.name, "error": type(exc).__name__}
            )
            return False
        self._failed = False
        self._last_error = None
        self._last_run_at = utcnow()
        return True

    async def run(self) -> None:
        while True:
            await asyncio.sleep(
                min(self.retry_seconds, self.interval_seconds)
                if self._failed
                else self.interval_seconds
            )
            await self.run_once()

    async def aclose(self) -> None:
        return None

    def status(self) -> Status:
        return worker_status(
            not self._failed,
            last_run_at=format_utc(self._last_run_at) if self._last_run_at else None,
            last_error=self._last_error,
        )


@dataclass
class _Started:
    name: str
    worker: BackgroundWorker
    task: asyncio.Task[None]


@dataclass
class ServiceRuntime:
    """What a service's lifespan holds: its database and its running workers."""

    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    readiness: Readiness
    service: str
    _workers: list[_Started] = field(default_factory=list)

    def start(self, name: str, worker: BackgroundWorker, *, inform: str | None = None) -> None:
        """Run ``worker`` in the background; ``inform`` names its informational /readyz block."""
        if inform is not None:
            self.readiness.inform(inform, worker.status)
        task = asyncio.create_task(worker.run(), name=f"{self.service}-{name}")
        self._workers.append(_Started(name, worker, task))

    async def stop(self) -> None:
        """Cancel every worker (latest first), wait for it to end, then close it."""
        while self._workers:
            started = self._workers.pop()
            await _cancel(started.task)
            try:
                await started.worker.aclose()
            except Exception as exc:
                logger.warning(
                    "background worker did not close cleanly",
                    extra={"worker": started.name, "error": repr(exc)},
                )


async def _cancel(task: asyncio.Task[None]) -> None:
    # Cancel until it is done: asyncio.wait_for inside a library may swallow one cancel.
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)
    if not task.cancelled() and task.exception() is not None:
        logger.error(
            "background worker failed",
            extra={"worker": task.get_name(), "error": repr(task.exception())},
        )


@asynccontextmanager
async def service_lifespan(
    app: FastAPI, settings: DatabaseSettings, *, service: str
) -> AsyncIterator[ServiceRuntime]:
    """The engine, the session factory and the database readiness check; workers stopped
    and the engine disposed on the way out, whatever happened inside."""
    engine = create_engine(
        settings.database_url,
        pool_size=settings.database_pool_size,
        statement_cache=settings.database_statement_cache,
    )
    readiness = shared_state(app).readiness
    runtime = ServiceRuntime(engine, create_session_factory(engine), readiness, service)
    readiness.require("database", lambda: check_database(engine))
    try:
        yield runtime
    finally:
        await runtime.stop()
        await engine.dispose()


__all__ = [
    "BackgroundWorker",
    "PeriodicJob",
    "ServiceRuntime",
    "Status",
    "service_lifespan",
    "worker_status",
]
