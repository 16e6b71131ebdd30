"""Bodies at tasks: cut at the limit while they stream in, and not read before the token.

Raw HTTP/1.1 over a socket to a real server: the client keeps sending a 10 MB chunked body
and stops as soon as an answer (or a close) arrives, so ``sent`` shows what the server took.
"""

from __future__ import annotations

import socket

from fastapi import FastAPI

from momentum_devtools.testing.servers import chunked, send_until_answered, serving, status_of

TEN_MB = 10 * 1024 * 1024


def head(*lines: str) -> bytes:
    fields = "".join(f"{line}\r\n" for line in lines)
    return (
        "POST /tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Transfer-Encoding: chunked\r\n{fields}\r\n"
    ).encode()


def test_a_chunked_body_over_the_limit_is_cut_with_413(app: FastAPI, alice: dict[str, str]) -> None:
    with serving(app) as port, socket.create_connection(("127.0.0.1", port)) as sock:
        sent, answer = send_until_answered(
            sock, head(f"Authorization: {alice['Authorization']}"), chunked(TEN_MB), timeout=5
        )
    assert status_of(answer) == 413, answer[:300]
    assert b"application/problem+json" in answer
    assert b"at most 262144 bytes" in answer
    assert sent < TEN_MB, "the server read the whole body before answering"


def test_a_large_body_without_a_token_gets_401_unread(app: FastAPI) -> None:
    with serving(app) as port, socket.create_connection(("127.0.0.1", port)) as sock:
        sent, answer = send_until_answered(sock, head(), chunked(TEN_MB), timeout=5)
    assert status_of(answer) == 401, answer[:300]
    assert b"connection: close" in answer.lower()
    assert sent < TEN_MB, "the server read the whole body before answering"
