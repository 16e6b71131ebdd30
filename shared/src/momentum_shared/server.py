"""The one way every Momentum program serves HTTP: uvicorn with httptools, with read limits.

``python -m momentum_shared.server momentum_tasks.app:create_app --port 8002`` builds the app
with its factory, reads the limits from the app's settings (``shared_state(app).settings``) and runs
uvicorn with :class:`LimitedHttpToolsProtocol`, which adds what httptools lacks: a deadline
for the request line and headers, one for the body, a bound on the header block's size and
on its number of fields (431), and a bound on the requests served per connection. uvicorn's
own keep-alive timeout, graceful shutdown and ``FORWARDED_ALLOW_IPS`` handling are kept.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import httptools
import uvicorn
from fastapi import FastAPI
from uvicorn.importer import import_from_string
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from momentum_shared.errors import PROBLEM_JSON, problem_body
from momentum_shared.settings import MomentumSettings, unknown_variables
from momentum_shared.state import shared_state
from momentum_shared.tracing import shutdown_tracing

logger = logging.getLogger("momentum.server")


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """What one connection may cost before the server answers 408 or 431 and closes it."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_header_bytes: int = 64 * 1024
    max_header_fields: int = 100
    max_requests_per_connection: int = 10_000

    @classmethod
    def from_settings(cls, settings: MomentumSettings) -> ServerLimits:
        return cls(
            header_timeout=settings.http_header_timeout_seconds,
            body_timeout=settings.http_body_timeout_seconds,
            max_header_bytes=settings.http_max_header_bytes,
            max_header_fields=settings.http_max_header_fields,
            max_requests_per_connection=settings.http_max_requests_per_connection,
        )


class _HeadersRefused(Exception):
    """Raised from a parser callback to stop parsing a header block over a limit."""


def _problem(status: int, detail: str) -> bytes:
    body = json.dumps(problem_body(status, detail=detail)).encode()
    return b"".join(
        [
            STATUS_LINE[status],
            b"content-type: " + PROBLEM_JSON.encode() + b"\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"connection: close\r\n\r\n",
            body,
        ]
    )


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header and body deadlines and header limits.

    A connection's header deadline starts when it opens, a later request's when its first
    byte arrives; the body deadline starts when the headers are complete. The hot path only
    notes the times: one timer per connection checks them, so a request arms no timer.
    Bytes of an unfinished header block are counted as they arrive, so an endless header
    line is refused before httptools has buffered it; a complete block is measured exactly
    only when the chunks it came in were larger than the limit.
    """

    limits: ClassVar[ServerLimits] = ServerLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline_timer: asyncio.TimerHandle | None = None
        self._headers_since: float | None = None
        self._body_since: float | None = None
        self._received_in_headers = 0
        self._chunk = 0
        self._refusal: bytes | None = None
        self._served = 0

    # Deadlines.
    def _check_deadlines(self) -> None:
        self._deadline_timer = None
        if self.transport.is_closing():
            return
        now = self.loop.time()
        limits = self.limits
        wait = limits.header_timeout
        if self._headers_since is not None:
            left = self._headers_since + limits.header_timeout - now
            if left <= 0:
                if self.cycle is not None and not self.cycle.response_complete:
                    # A pipelined request's headers are late while a response is being sent.
                    self.cycle.keep_alive = False
                else:
                    self._refuse(_problem(408, "the request headers did not arrive in time"))
                    return
            wait = min(wait, max(left, 0.05))
        if self._body_since is not None:
            left = self._body_since + limits.body_timeout - now
            if left <= 0:
                self._refuse(_problem(408, "the request body did not arrive in time"))
                return
            wait = min(wait, left)
        self._deadline_timer = self.loop.call_later(wait, self._check_deadlines)

    def _refuse(self, payload: bytes) -> None:
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            if self.cycle.response_started:
                self.transport.close()
                return
            # The app is still waiting for the body: it sees a disconnect, its answer is dropped.
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        self.transport.write(payload)
        self.transport.close()

    def _refuse_headers(self, detail: str) -> None:
        self._refusal = _problem(431, detail)
        raise _HeadersRefused(detail)

    # Protocol interface.
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._headers_since = self.loop.time()
        self._deadline_timer = self.loop.call_later(
            self.limits.header_timeout, self._check_deadlines
        )

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
            self._deadline_timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._chunk = len(data)
        if self._headers_since is None and self._body_since is None:
            # Bytes between requests (even the blank lines the parser skips before a request
            # line) start the next request's header deadline.
            self._headers_since = self.loop.time()
        if self._headers_since is not None:
            self._received_in_headers += self._chunk
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self._refusal is not None:
                self._refuse(self._refusal)
                return
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        # An unfinished header block (the chunk that began the request is not counted).
        if self._headers_since is not None and (
            self._received_in_headers > self.limits.max_header_bytes
        ):
            self._refuse(_problem(431, "the request headers are too large"))

    # Parser callbacks.
    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._headers_since is None:
            self._headers_since = self.loop.time()
        self._received_in_headers = 0

    def on_headers_complete(self) -> None:
        limits = self.limits
        if len(self.headers) > limits.max_header_fields:
            self._refuse_headers("the request has too many header fields")
        # Exact, whatever the chunking (at most 100 fields to add up).
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > limits.max_header_bytes:
            self._refuse_headers("the request headers are too large")
        self._headers_since = None
        self._body_since = self.loop.time()
        super().on_headers_complete()
        self._served += 1
        if self._served >= limits.max_requests_per_connection and self.cycle is not None:
            self.cycle.keep_alive = False

    def on_message_complete(self) -> None:
        self._body_since = None
        super().on_message_complete()


def protocol_class(limits: ServerLimits) -> type[LimitedHttpToolsProtocol]:
    """The protocol class uvicorn builds per connection, bound to ``limits``."""
    return type("LimitedHttpToolsProtocol", (LimitedHttpToolsProtocol,), {"limits": limits})


def app_settings(app: FastAPI) -> MomentumSettings:
    settings = shared_state(app).settings
    if not isinstance(settings, MomentumSettings):
        raise TypeError("the app factory must set the program's settings in its shared state")
    return settings


# Net growth of the objects the garbage collector tracks before it collects the youngest
# generation (CPython's default: 700). Cycles are still found, a little later: 10,000 young
# objects are a few MB at most.
YOUNG_GENERATION_THRESHOLD = 10_000


class _Server(uvicorn.Server):
    """uvicorn's server, freezing what start-up made and exporting buffered spans at the end.

    Once the app has started (its lifespan run, its sockets bound), every object alive is
    moved out of the garbage collector's sight (``gc.freeze``): modules, routes, schemas and
    compiled statements live as long as the process, and a full collection would otherwise
    walk them all again and again (69 to 95 µs per request of ``GET /tasks/{id}`` in an
    in-process profile, 6.5 µs frozen; docs/adr/0010-http-hot-path.md).

    The youngest generation is then collected only once the objects alive in it grow by
    ``YOUNG_GENERATION_THRESHOLD``, not CPython's 700: the objects of the requests in flight
    alone swing by more than 700, so the default collected them again and again while they
    were still in use (about 0.2 collections per request of ``GET /tasks/{id}``, 40 to 90 µs
    per request in all; none at all in 4 s of the same load at 10,000).

    After a graceful stop uvicorn raises the signal it caught again, so the process ends by
    it: neither code after ``run()`` nor ``atexit`` runs, and this is the last chance.
    """

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        gc.collect()
        gc.freeze()
        gc.set_threshold(YOUNG_GENERATION_THRESHOLD, *gc.get_threshold()[1:])

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await super().shutdown(sockets)
        shutdown_tracing()  # configured by the app's factory (build_app)


def build_config(
    factory: Callable[[], FastAPI],
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    access_log: bool = True,
    timeout_graceful_shutdown: float | None = None,
) -> uvicorn.Config:
    """A loaded uvicorn config serving ``factory()`` with the limits of the app's settings.

    uvicorn configures its loggers first and the factory then configures the program's, the
    same order as ``uvicorn --factory``.
    """
    built: list[FastAPI] = []

    def build() -> FastAPI:
        built.append(factory())
        return built[-1]

    config = uvicorn.Config(
        build,
        factory=True,
        host=host,
        port=port,
        http="httptools",
        access_log=access_log,
        timeout_graceful_shutdown=(
            None if timeout_graceful_shutdown is None else int(timeout_graceful_shutdown)
        ),
    )
    config.load()
    settings = app_settings(built[0])
    for name in unknown_variables(settings):
        logger.warning(
            "environment variable names no setting; it is ignored (docs/configuration.md)",
            extra={"variable": name},
        )
    config.timeout_keep_alive = settings.http_keep_alive_timeout_seconds  # type: ignore[assignment]
    config.http_protocol_class = protocol_class(ServerLimits.from_settings(settings))
    return config


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m momentum_shared.server", description="Serve a Momentum app over HTTP."
    )
    parser.add_argument("factory", help="module:function returning the FastAPI app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--no-access-log", dest="access_log", action="store_false")
    parser.add_argument("--timeout-graceful-shutdown", type=float, default=None)
    args = parser.parse_args(argv)
    factory: Callable[[], FastAPI] = import_from_string(args.factory)
    config = build_config(
        factory,
        host=args.host,
        port=args.port,
        access_log=args.access_log,
        timeout_graceful_shutdown=args.timeout_graceful_shutdown,
    )
    _Server(config).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
