"""Bodies at auth: an anonymous route reads its body, but only up to the limit.

Raw HTTP/1.1 over a socket to a real server: the client keeps sending a 10 MB chunked body
and stops as soon as an answer (or a close) arrives, so ``sent`` shows what the server took.
"""

from __future__ import annotations

import socket

from fastapi import FastAPI

from momentum_devtools.testing.servers import chunked, send_until_answered, serving, status_of

TEN_MB = 10 * 1024 * 1024
REGISTER = (
    b"POST /auth/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)


def test_a_chunked_registration_over_the_limit_is_cut_with_413(app: FastAPI) -> None:
    with serving(app) as port, socket.create_connection(("127.0.0.1", port)) as sock:
        sent, answer = send_until_answered(sock, REGISTER, chunked(TEN_MB), timeout=5)
    assert status_of(answer) == 413, answer[:300]
    assert b"application/problem+json" in answer
    assert b"at most 1048576 bytes" in answer
    assert sent < TEN_MB, "the server read the whole body before answering"


def test_a_registration_under_the_limit_is_still_read(app: FastAPI) -> None:
    body = b'{"email": "ada@example.com", "password": "correct horse battery staple"}'
    request = REGISTER.replace(b"Transfer-Encoding: chunked", b"Content-Length: %d" % len(body))
    with serving(app) as port, socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(request + body)
        sock.settimeout(10)
        answer = sock.recv(65536)
    assert status_of(answer) == 201, answer[:300]
