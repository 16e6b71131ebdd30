"""A real uvicorn server for tests (the production entry point's config), and raw sockets."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator

import uvicorn
from fastapi import FastAPI, Request

from momentum_devtools.testing.resources import free_port
from momentum_shared.app import build_app
from momentum_shared.server import build_config
from momentum_shared.settings import MomentumSettings
from momentum_shared.state import shared_state


def echo_app(**settings: object) -> FastAPI:
    """A house app (``build_app``) whose ``POST /echo`` reads the body and says how long it was."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield

    app = build_app(service="demo", title="demo", version="0", lifespan=lifespan)
    shared_state(app).settings = MomentumSettings.model_validate(
        {"environment": "test", "log_json": False, **settings}
    )

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"length": len(await request.body())}

    return app


@contextlib.contextmanager
def serving(app: FastAPI, *, timeout: float = 10.0) -> Iterator[int]:
    """Serve ``app`` on a free port from a thread, as ``python -m momentum_shared.server`` would."""
    port = free_port()
    factory: Callable[[], FastAPI] = lambda: app  # noqa: E731
    server = uvicorn.Server(build_config(factory, port=port, access_log=False))
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout)


def read_answer(sock: socket.socket, *, timeout: float) -> bytes:
    """Everything the server sends until it closes the connection or ``timeout`` passes."""
    sock.settimeout(timeout)
    data = b""
    with contextlib.suppress(TimeoutError, ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    return data


def send_until_answered(
    sock: socket.socket, head: bytes, chunks: Iterator[bytes], *, timeout: float
) -> tuple[int, bytes]:
    """Send ``head`` then ``chunks`` until the server answers; the bytes sent and the answer.

    Stops sending as soon as the socket is readable (an answer or a close), so the count
    shows how much the server had to take before it answered.
    """
    sock.settimeout(timeout)
    sock.sendall(head)
    sent = 0
    deadline = time.monotonic() + timeout
    for chunk in chunks:
        readable, _, _ = select.select([sock], [], [], 0)
        if readable or time.monotonic() > deadline:
            break
        try:
            sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += len(chunk)
    return sent, read_answer(sock, timeout=max(0.1, deadline - time.monotonic()))


def chunked(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    """``total`` bytes of a JSON-ish body in HTTP/1.1 chunks of ``size``, then the last chunk."""
    piece = b"[" + b"1," * (size // 2 - 1) + b"1"
    payload = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    for _ in range(total // size):
        yield payload
    yield b"0\r\n\r\n"


def status_of(answer: bytes) -> int | None:
    """The status code of a raw HTTP/1.1 answer, ``None`` when there was none."""
    if not answer.startswith(b"HTTP/1.1 "):
        return None
    return int(answer[9:12])
