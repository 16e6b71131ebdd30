"""Real servers for the gateway's tests: small FastAPI upstreams under uvicorn, broken ones too."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import socketserver
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel
from starlette.types import ASGIApp

from momentum_devtools.natsserver import free_port
from momentum_shared.state import shared_state


class UvicornThread:
    """An ASGI app served by uvicorn (uvloop + httptools, like production) in its own thread."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        port: int | None = None,
        proxy_headers: bool = False,
        forwarded_allow_ips: str | None = None,
    ) -> None:
        """``proxy_headers`` as uvicorn's CLI; ``forwarded_allow_ips`` None: uvicorn's default."""
        self.port = port or free_port()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="on",
            loop="uvloop",
            http="httptools",
            proxy_headers=proxy_headers,
            forwarded_allow_ips=forwarded_allow_ips,
            timeout_keep_alive=30,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> UvicornThread:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the upstream did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)

    def __enter__(self) -> UvicornThread:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


class Item(BaseModel):
    """Shared name, different shape per service: the merged document must keep both."""

    name: str


class TaskItem(BaseModel):
    title: str
    done: bool = False


async def echo(request: Request, service: str) -> Response:
    body = b""
    async for chunk in request.stream():
        body += chunk
    return JSONResponse(
        {
            "service": service,
            "method": request.method,
            "path": request.url.path,
            "raw_path": request.scope.get("raw_path", b"").decode("latin-1"),
            "client": request.client.host if request.client else None,
            "query": request.url.query,
            "headers": [[k, v] for k, v in request.headers.items()],
            "body_length": len(body),
            "body_sha256": hashlib.sha256(body).hexdigest(),
        },
        headers={"X-Upstream": service, "Connection": "keep-alive, X-Secret-Hop"},
    )


def upstream_app(service: str) -> FastAPI:
    """A stand-in service: a few typed routes for the OpenAPI merge, and an echo for the rest."""
    app = FastAPI(title=f"Momentum {service}")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Not reachable through the gateway."""
        return {"status": "ok"}

    if service == "auth":

        @app.post("/auth/register", status_code=201)
        async def register(item: Item) -> Item:
            """Register."""
            return item

        @app.get("/auth/me")
        async def me(request: Request) -> Response:
            """Who am I."""
            return await echo(request, service)

        @app.post("/auth/admin/keys/rotate", status_code=201)
        async def rotate(request: Request) -> Response:
            """Rotate."""
            return await echo(request, service)

        @app.get("/.well-known/jwks.json")
        async def jwks() -> dict[str, Any]:
            """Keys."""
            return {"keys": []}

    if service == "tasks":

        @app.get("/tasks/slow")
        async def slow() -> dict[str, str]:
            """Answers after the gateway's patience ran out."""
            await asyncio.sleep(3)
            return {"status": "late"}

        @app.get("/tasks/big")
        async def big(size: int = 3 * 1024 * 1024) -> StreamingResponse:
            """A large streamed body (no Content-Length)."""

            async def chunks() -> AsyncIterator[bytes]:
                sent = 0
                while sent < size:
                    part = min(65536, size - sent)
                    yield bytes([sent % 251]) * part
                    sent += part

            return StreamingResponse(chunks(), media_type="application/octet-stream")

        @app.delete("/tasks/{task_id}", status_code=204)
        async def delete(task_id: str) -> Response:
            """Gone."""
            return Response(status_code=204)

        @app.post("/tasks", status_code=201)
        async def create(item: TaskItem, request: Request) -> TaskItem:
            """Create."""
            return item

        @app.get("/tasks/{task_id}")
        async def read(task_id: str, request: Request) -> Response:
            """One task."""
            return await echo(request, service)

    if service == "analytics":

        @app.get("/analytics/streaks")
        async def streaks(request: Request) -> Response:
            """Streaks."""
            return await echo(request, service)

    @app.api_route(
        "/{path:path}",
        methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
        include_in_schema=False,
    )
    async def anything(request: Request, path: str) -> Response:
        """Echo."""
        return await echo(request, service)

    return app


NOT_HTTP = b"SSH-2.0-OpenSSH_9.6\r\nnot http at all\r\n\r\n"


class GarbageServer:
    """A TCP server that answers every connection with ``payload`` and hangs up.

    By default that is something that is not HTTP at all; a test may pass the start of an
    HTTP response that breaks off.
    """

    def __init__(self, payload: bytes = NOT_HTTP) -> None:
        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                with contextlib.suppress(OSError):
                    self.request.recv(65536)
                    self.request.sendall(payload)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> GarbageServer:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def closed_port() -> int:
    """A port on which nothing listens (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serving(app: ASGIApp) -> Iterator[UvicornThread]:
    with UvicornThread(app) as server:
        yield server


def header_values(echoed: dict[str, Any], name: str) -> list[str]:
    return [v for k, v in echoed["headers"] if k.lower() == name.lower()]


async def internal_get(http: httpx.AsyncClient, path: str) -> httpx.Response:
    """GET ``path`` on the internal port (metrics, readiness details) of the app behind ``http``.

    ``http`` is a ``running_app`` client; the app serves its internal port itself.
    """
    transport = http._transport
    assert isinstance(transport, httpx.ASGITransport)
    app = transport.app
    assert isinstance(app, FastAPI)
    async with httpx.AsyncClient(
        base_url=str(shared_state(app).internal_url), timeout=5
    ) as internal:
        return await internal.get(path)
