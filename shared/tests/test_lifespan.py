"""The shared lifespan: the database readiness check, workers stopped alike, periodic jobs."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from fastapi import FastAPI

from momentum_shared.health import Readiness
from momentum_shared.lifespan import PeriodicJob, Status, service_lifespan, worker_status
from momentum_shared.settings import DatabaseSettings
from momentum_shared.state import SharedState, install_shared_state, shared_state


class Worker:
    """Runs until cancelled; records what happened to it."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log
        self.running = asyncio.Event()

    async def run(self) -> None:
        self.running.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.log.append(f"{self.name} cancelled")
            raise

    async def aclose(self) -> None:
        self.log.append(f"{self.name} closed")

    def status(self) -> Status:
        return worker_status(self.running.is_set(), name=self.name)


def an_app() -> FastAPI:
    app = FastAPI()
    install_shared_state(app, SharedState(service="test", readiness=Readiness()))
    return app


async def test_workers_stop_latest_first_each_cancelled_then_closed(tmp_path: Path) -> None:
    app = an_app()
    settings = DatabaseSettings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    log: list[str] = []
    first, second = Worker("first", log), Worker("second", log)
    async with service_lifespan(app, settings, service="test") as runtime:
        runtime.start("first", first)
        runtime.start("second", second, inform="second")
        await first.running.wait()
        await second.running.wait()
        ready, checks = await shared_state(app).readiness.evaluate()
        assert ready
        assert checks["database"] == {"status": "ok"}
        assert checks["second"] == {"status": "ok", "name": "second"}
        assert log == []
    assert log == ["second cancelled", "second closed", "first cancelled", "first closed"]


async def test_a_failing_periodic_job_is_logged_by_name_and_runs_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outcomes = [RuntimeError("database down"), None]

    async def job() -> None:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome

    periodic = PeriodicJob("nightly-purge", job, interval_seconds=3600, retry_seconds=1)
    with caplog.at_level(logging.WARNING, logger="momentum.lifespan"):
        assert await periodic.run_once() is False
    [record] = caplog.records
    assert record.getMessage() == "periodic job failed"
    assert getattr(record, "job", None) == "nightly-purge"
    assert getattr(record, "error", None) == "RuntimeError"
    assert periodic.status()["status"] == "degraded"
    assert await periodic.run_once() is True
    assert periodic.status()["status"] == "ok"
    assert periodic.status()["last_error"] is None
