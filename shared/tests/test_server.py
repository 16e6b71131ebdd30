"""The HTTP server every program runs: header and body deadlines, header limits (431).

Each test talks raw HTTP/1.1 over a socket to a real uvicorn server started by the production
entry point's config, with the deadlines shortened to half a second.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from pydantic_settings import SettingsConfigDict

from momentum_devtools.testing.servers import echo_app, read_answer, serving, status_of
from momentum_shared.server import build_config
from momentum_shared.settings import MomentumSettings
from momentum_shared.state import shared_state

DEADLINE = 0.5
# Generous against a loaded machine, still far below what a held connection would show.
WAIT = DEADLINE + 2.0


def make_app(**overrides: object) -> FastAPI:
    return echo_app(
        http_header_timeout_seconds=DEADLINE,
        http_body_timeout_seconds=DEADLINE,
        http_keep_alive_timeout_seconds=DEADLINE,
        **overrides,
    )


@pytest.fixture
def port() -> Iterator[int]:
    with serving(make_app()) as port:
        yield port


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=WAIT)


def timed_answer(sock: socket.socket) -> tuple[bytes, float]:
    started = time.monotonic()
    answer = read_answer(sock, timeout=WAIT)
    return answer, time.monotonic() - started


def test_a_normal_request_is_answered_and_the_connection_kept(port: int) -> None:
    with connect(port) as sock:
        for _ in range(2):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = sock.recv(65536)
            assert status_of(answer) == 200, answer
        sock.sendall(b'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"abc"')
        assert b'{"length":5}' in sock.recv(65536)


def test_partial_headers_get_408_and_a_close_within_the_deadline(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        answer, took = timed_answer(sock)
    assert status_of(answer) == 408, answer
    assert b"application/problem+json" in answer
    assert took < WAIT


def test_a_connection_that_sends_nothing_is_closed_within_the_deadline(port: int) -> None:
    with connect(port) as sock:
        answer, took = timed_answer(sock)
    assert status_of(answer) == 408, answer
    assert took < WAIT


def test_an_idle_keep_alive_connection_is_closed(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        first = sock.recv(65536)
        rest, took = timed_answer(sock)
    assert status_of(first) == 200
    assert rest == b""
    assert took < WAIT


def test_a_header_block_over_the_limit_gets_431(port: int) -> None:
    lines = b"".join(b"X-Big-%d: %s\r\n" % (i, b"v" * 8000) for i in range(9))  # 72 KB
    with connect(port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + lines + b"\r\n")
        answer = read_answer(sock, timeout=WAIT)
    assert status_of(answer) == 431, answer


def test_an_endless_header_line_gets_431_before_it_ends(port: int) -> None:
    sent = 0
    with connect(port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Endless: ")
        try:
            while sent < 8 * 1024 * 1024:  # the server must answer long before 8 MB
                sock.sendall(b"v" * 8192)
                sent += 8192
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = read_answer(sock, timeout=WAIT)
    assert sent < 8 * 1024 * 1024
    assert status_of(answer) == 431 or answer == b"", answer


def test_a_blank_line_after_a_response_does_not_hold_the_connection_open(port: int) -> None:
    # The parser skips blank lines before a request line: they must still start its deadline.
    with connect(port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        first = sock.recv(65536)
        sock.sendall(b"\r\n")
        rest, took = timed_answer(sock)
    assert status_of(first) == 200
    assert took < WAIT
    assert rest == b"" or status_of(rest) == 408, rest


def test_a_header_block_over_the_limit_gets_431_however_it_is_split(port: int) -> None:
    lines = b"".join(b"X-Big-%d: %s\r\n" % (i, b"v" * 8000) for i in range(9))  # 72 KB
    with connect(port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + lines)  # most in one read
        sock.sendall(b"X-Tail: 1\r\n\r\n")
        answer = read_answer(sock, timeout=WAIT)
    assert status_of(answer) == 431, answer


def test_more_than_100_header_fields_get_431(port: int) -> None:
    fields = b"".join(b"X-F-%d: 1\r\n" % i for i in range(101))
    with connect(port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n" + fields + b"\r\n")
        answer = read_answer(sock, timeout=WAIT)
    assert status_of(answer) == 431, answer


def test_100_header_fields_are_still_accepted(port: int) -> None:
    fields = b"".join(b"X-F-%d: 1\r\n" % i for i in range(99))
    with connect(port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n")
        assert status_of(sock.recv(65536)) == 200


def test_a_body_that_never_arrives_gets_408_within_the_deadline(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{")
        answer, took = timed_answer(sock)
    assert status_of(answer) == 408, answer
    assert took < WAIT


def test_a_connection_serves_a_bounded_number_of_requests() -> None:
    with serving(make_app(http_max_requests_per_connection=2)) as port, connect(port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 3)
        answer = read_answer(sock, timeout=WAIT)
    assert answer.count(b"HTTP/1.1 200") == 2
    assert b"connection: close" in answer.lower()


def test_the_server_names_variables_that_set_nothing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    class DemoSettings(MomentumSettings):
        model_config = SettingsConfigDict(env_prefix="MOMENTUM_DEMO_", extra="ignore")

    monkeypatch.setenv("MOMENTUM_DEMO_LOG_LEVL", "DEBUG")
    monkeypatch.setenv("MOMENTUM_DEMO_LOG_LEVEL", "INFO")

    def factory() -> FastAPI:
        app = echo_app()
        shared_state(app).settings = DemoSettings(environment="test", log_json=False)
        return app

    with caplog.at_level(logging.WARNING, logger="momentum.server"):
        build_config(factory)
    named = [getattr(record, "variable", None) for record in caplog.records]
    assert named == ["MOMENTUM_DEMO_LOG_LEVL"]


# Run in a child: the server's start-up changes the garbage collector of its whole process.
_STARTUP = """
import asyncio, gc, json
from momentum_devtools.testing.servers import echo_app
from momentum_shared.server import _Server, build_config
from momentum_devtools.benchmarking import free_port

app = echo_app()
server = _Server(build_config(lambda: app, port=free_port(), access_log=False))

async def main():
    before = {"threshold": gc.get_threshold()[0], "frozen": gc.get_freeze_count()}
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    after = {"threshold": gc.get_threshold()[0], "frozen": gc.get_freeze_count()}
    server.should_exit = True
    await serving
    print(json.dumps({"before": before, "after": after}))

asyncio.run(main())
"""


def test_start_up_freezes_what_it_made_and_collects_young_objects_less_often() -> None:
    import json
    import subprocess
    import sys

    from momentum_shared.server import YOUNG_GENERATION_THRESHOLD

    done = subprocess.run(
        [sys.executable, "-c", _STARTUP], capture_output=True, text=True, timeout=60, check=True
    )
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["before"] == {"threshold": 700, "frozen": 0}
    assert seen["after"]["threshold"] == YOUNG_GENERATION_THRESHOLD > 700
    # Modules, routes and schemas: tens of thousands of objects out of the collector's walk.
    assert seen["after"]["frozen"] > 10_000
