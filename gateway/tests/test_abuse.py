"""One client must not take the gateway from everyone else: bodies, pools, requests in flight.

The attacks use raw sockets that send a request's head and never finish its body; every
deadline is short and every socket is closed when the test ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import httpx
from fastapi import FastAPI

from gateway.tests.support import UvicornThread
from momentum_devtools.testing.apps import running_app
from momentum_devtools.testing.issuer import TestIssuer
from momentum_gateway.pipeline import Gateway
from momentum_gateway.state import gateway_state


def gateway_of(server: UvicornThread) -> Gateway:
    app = server.server.config.app
    assert isinstance(app, FastAPI)
    gateway = gateway_state(app).gateway
    return gateway


def unfinished_body(
    server: UvicornThread,
    path: str,
    headers: dict[str, str] | None = None,
    *,
    source: str = "127.0.0.1",
) -> socket.socket:
    """A connection that sends a request head and 1 byte of a 100-byte body, then nothing."""
    port = urlsplit(server.url).port
    sock = socket.create_connection(
        ("127.0.0.1", port or 80), timeout=2, source_address=(source, 0)
    )
    head = f"POST {path} HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    head += "Content-Length: 100\r\n\r\n{"
    sock.sendall(head.encode())
    return sock


def read_answer(sock: socket.socket, *, within: float) -> tuple[int, dict[str, str], bytes]:
    """The status, headers and body of the answer on ``sock`` (``within`` seconds at most)."""
    sock.settimeout(within)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body


@contextlib.contextmanager
def closing_all() -> Iterator[list[socket.socket]]:
    socks: list[socket.socket] = []
    try:
        yield socks
    finally:
        for sock in socks:
            sock.close()


async def eventually(condition: Callable[[], bool], *, within: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "the condition never held"
        await asyncio.sleep(0.01)


async def test_a_body_that_does_not_arrive_in_time_is_408_and_holds_no_upstream_connection(
    live_gateway: Callable[..., UvicornThread], issuer: TestIssuer
) -> None:
    server = live_gateway(
        body_timeout_seconds=0.5, upstream_pool_size=1, upstream_timeout_seconds=5.0
    )
    with closing_all() as socks:
        socks.append(unfinished_body(server, "/tasks", issuer.bearer()))
        await asyncio.sleep(0.1)
        async with httpx.AsyncClient(base_url=server.url, timeout=2) as http:
            # The only pooled connection is free: another request goes through meanwhile.
            assert (await http.get("/tasks/1", headers=issuer.bearer())).status_code == 200
        proxy = gateway_of(server).proxy
        assert proxy is not None
        assert proxy.in_use("tasks") == 0
        status, headers, body = read_answer(socks[0], within=2.0)
    assert status == 408
    assert headers["content-type"] == "application/problem+json"
    assert headers["connection"] == "close"
    assert b"did not arrive" in body


async def test_another_user_is_served_while_one_client_holds_unfinished_bodies(
    live_gateway: Callable[..., UvicornThread], issuer: TestIssuer
) -> None:
    server = live_gateway(
        upstream_pool_size=2,
        upstream_timeout_seconds=5.0,
        body_timeout_seconds=3.0,
        max_in_flight_per_user=0,
        max_in_flight_per_address=0,
    )
    attacker, victim = uuid.uuid4(), uuid.uuid4()
    with closing_all() as socks:
        for _ in range(6):
            socks.append(unfinished_body(server, "/tasks", issuer.bearer(attacker)))
        await asyncio.sleep(0.3)  # the gateway has read every head by now
        async with httpx.AsyncClient(base_url=server.url, timeout=2) as http:
            response = await http.get("/tasks/1", headers=issuer.bearer(victim))
            assert response.status_code == 200
            assert response.json()["service"] == "tasks"
        proxy = gateway_of(server).proxy
        assert proxy is not None
        assert proxy.in_use("tasks") == 0


async def test_waiting_for_an_upstream_connection_is_bounded_by_a_503_with_retry_after(
    app_factory: Callable[..., FastAPI], issuer: TestIssuer
) -> None:
    app = app_factory(
        upstream_pool_size=1, upstream_pool_timeout_seconds=0.3, upstream_timeout_seconds=5
    )
    gateway = gateway_state(app).gateway
    async with running_app(app) as http:
        proxy = gateway.proxy
        assert proxy is not None
        slow = asyncio.create_task(http.get("/tasks/slow", headers=issuer.bearer()))
        try:
            await eventually(lambda: proxy.in_use("tasks") == 1)
            response = await http.get("/tasks/1", headers=issuer.bearer())
            assert response.status_code == 503
            assert response.headers["content-type"] == "application/problem+json"
            assert int(response.headers["retry-after"]) >= 1
            assert "busy" in response.json()["detail"]
            # Only the tasks pool is full.
            assert (
                await http.get("/analytics/streaks", headers=issuer.bearer())
            ).status_code == 200
        finally:
            slow.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await slow


async def test_one_user_has_at_most_its_cap_of_requests_in_flight(
    live_gateway: Callable[..., UvicornThread], issuer: TestIssuer
) -> None:
    server = live_gateway(
        max_in_flight_per_user=2, max_in_flight_per_address=0, body_timeout_seconds=3.0
    )
    gateway = gateway_of(server)
    greedy, other = uuid.uuid4(), uuid.uuid4()
    async with httpx.AsyncClient(base_url=server.url, timeout=2) as http:
        with closing_all() as socks:
            for _ in range(2):
                socks.append(unfinished_body(server, "/tasks", issuer.bearer(greedy)))
            await eventually(lambda: gateway.user_in_flight.count(str(greedy)) == 2)
            refused = await http.get("/tasks/1", headers=issuer.bearer(greedy))
            assert refused.status_code == 429
            assert refused.headers["content-type"] == "application/problem+json"
            assert int(refused.headers["retry-after"]) >= 1
            assert "in flight" in refused.json()["detail"]
            assert (await http.get("/tasks/1", headers=issuer.bearer(other))).status_code == 200
        # Once the held requests are gone, so is the refusal.
        await eventually(lambda: gateway.user_in_flight.count(str(greedy)) == 0)
        assert (await http.get("/tasks/1", headers=issuer.bearer(greedy))).status_code == 200


async def test_one_address_has_at_most_its_cap_of_requests_in_flight(
    live_gateway: Callable[..., UvicornThread], issuer: TestIssuer
) -> None:
    server = live_gateway(
        max_in_flight_per_address=2, max_in_flight_per_user=0, body_timeout_seconds=3.0
    )
    gateway = gateway_of(server)
    elsewhere = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=2) as http,
        httpx.AsyncClient(base_url=server.url, timeout=2, transport=elsewhere) as neighbour,
    ):
        with closing_all() as socks:
            for _ in range(2):
                socks.append(unfinished_body(server, "/auth/register"))
            await eventually(lambda: gateway.address_in_flight.count("127.0.0.1") == 2)
            for refused in (
                await http.post("/auth/register", json={"name": "x"}),
                await http.get("/tasks/1", headers=issuer.bearer()),
            ):
                assert refused.status_code == 429
                assert int(refused.headers["retry-after"]) >= 1
                assert "in flight from this address" in refused.json()["detail"]
            served = await neighbour.post("/auth/register", json={"name": "x"})
            assert served.status_code == 201
        await eventually(lambda: len(gateway.address_in_flight) == 0)


def test_in_flight_counts_keep_only_busy_keys() -> None:
    from momentum_gateway.ratelimit import InFlight

    caps = InFlight(2)
    assert [caps.enter("a"), caps.enter("a"), caps.enter("a")] == [True, True, False]
    assert caps.enter("b")
    caps.leave("a")
    assert caps.enter("a")
    for key in ("a", "a", "b"):
        caps.leave(key)
    assert len(caps) == 0
