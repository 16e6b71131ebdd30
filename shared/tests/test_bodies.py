"""The body limit every service gets from ``build_app``, against a real server and raw sockets."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from momentum_devtools.testing.servers import (
    chunked,
    echo_app,
    read_answer,
    send_until_answered,
    serving,
    status_of,
)

LIMIT = 64 * 1024


@pytest.fixture
def port() -> Iterator[int]:
    with serving(echo_app(max_body_bytes=LIMIT)) as port:
        yield port


CHUNKED = b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"


def test_a_chunked_body_over_the_limit_is_cut_while_it_streams(port: int) -> None:
    total = 10 * 1024 * 1024
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sent, answer = send_until_answered(sock, CHUNKED, chunked(total), timeout=5)
    assert status_of(answer) == 413, answer[:300]
    assert b"application/problem+json" in answer
    assert b"connection: close" in answer.lower()
    assert sent < total


def test_a_declared_length_over_the_limit_is_refused_before_the_body(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (LIMIT + 1))
        answer = read_answer(sock, timeout=5)
    assert status_of(answer) == 413, answer[:300]


def test_a_chunked_body_at_the_limit_is_read_in_full(port: int) -> None:
    body = b"x" * LIMIT
    request = CHUNKED + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        answer = sock.recv(65536)
    assert status_of(answer) == 200, answer[:300]
    assert b'{"length":65536}' in answer
