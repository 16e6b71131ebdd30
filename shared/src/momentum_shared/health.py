"""Liveness and readiness: ``/healthz`` always 200, ``/readyz`` runs pluggable checks."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from momentum_shared.errors import problem_response
from momentum_shared.state import shared_state

Check = Callable[[], Awaitable[None]]
Info = Callable[[], dict[str, Any]]


@dataclass
class Readiness:
    """Required checks gate readiness; informational ones only report their state."""

    required: dict[str, Check] = field(default_factory=dict)
    informational: dict[str, Info] = field(default_factory=dict)
    timeout: float = 2.0

    def require(self, name: str, check: Check) -> None:
        self.required[name] = check

    def inform(self, name: str, info: Info) -> None:
        self.informational[name] = info

    async def evaluate(self) -> tuple[bool, dict[str, Any]]:
        results: dict[str, Any] = {}
        ready = True
        for name, check in self.required.items():
            try:
                await asyncio.wait_for(check(), timeout=self.timeout)
                results[name] = {"status": "ok"}
            except Exception as exc:
                ready = False
                results[name] = {"status": "failing", "error": type(exc).__name__}
        for name, info in self.informational.items():
            try:
                results[name] = info()
            except Exception as exc:
                results[name] = {"status": "unknown", "error": type(exc).__name__}
        return ready, results


def health_router(*, detailed: bool = True) -> APIRouter:
    """``/healthz`` and ``/readyz``; ``detailed=False``: only ready or not, for a public port."""
    router = APIRouter()

    @router.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @router.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> JSONResponse:
        """200 when every required dependency answers, 503 naming what is missing."""
        readiness = shared_state(request.app).readiness
        ready, checks = await readiness.evaluate()
        if not detailed:
            if ready:
                return JSONResponse({"status": "ready"})
            return problem_response(503, detail="not ready", headers={"Retry-After": "5"})
        if ready:
            return JSONResponse({"status": "ready", "checks": checks})
        missing = ", ".join(n for n, c in checks.items() if c.get("status") == "failing")
        return problem_response(
            503,
            detail=f"not ready: {missing}",
            headers={"Retry-After": "5"},
            extra={"checks": checks},
        )

    return router
