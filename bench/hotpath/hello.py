"""The baseline of bench/hotpath and bench/growth: a bare FastAPI app with one ``GET /hello``.

Served by ``momentum_devtools.benchmarking.Uvicorn`` (uvloop, httptools, access log off, one
worker), the flags the issue's baseline names, whatever server Momentum itself uses.
"""

from __future__ import annotations

from fastapi import FastAPI


def create_app() -> FastAPI:
    app = FastAPI()

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        return {"message": "hello"}

    return app
