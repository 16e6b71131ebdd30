"""Proxying to real upstream servers: headers, bodies, limits and upstream failures."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gateway.tests.support import (
    GarbageServer,
    UvicornThread,
    closed_port,
    header_values,
)
from momentum_devtools.testing.apps import running_app
from momentum_devtools.testing.issuer import TestIssuer


def bearer(issuer: TestIssuer, **kwargs: Any) -> dict[str, str]:
    return issuer.bearer(**kwargs)


async def test_a_request_reaches_the_owning_service_unchanged(
    client: httpx.AsyncClient, issuer: TestIssuer
) -> None:
    task_id = uuid.uuid4()
    response = await client.get(
        f"/tasks/{task_id}", params={"a": "1", "b": "x y"}, headers=bearer(issuer)
    )
    assert response.status_code == 200
    echoed = response.json()
    assert echoed["service"] == "tasks"
    assert echoed["path"] == f"/tasks/{task_id}"
    assert echoed["query"] == "a=1&b=x+y"
    assert response.headers["x-upstream"] == "tasks"


@pytest.mark.parametrize(
    ("path", "service"),
    [
        ("/auth/me", "auth"),
        ("/auth/me/sessions", "auth"),
        ("/.well-known/oauth-authorization-server", "auth"),
        ("/tasks", "tasks"),
        ("/tasks/abc/complete", "tasks"),
        ("/analytics/streaks", "analytics"),
        ("/analytics/reports/weekly", "analytics"),
    ],
)
async def test_each_prefix_goes_to_its_service(
    client: httpx.AsyncClient, issuer: TestIssuer, path: str, service: str
) -> None:
    response = await client.get(path, headers=bearer(issuer))
    assert response.status_code == 200, response.text
    assert response.json()["service"] == service


async def test_the_authorization_header_is_passed_on(
    client: httpx.AsyncClient, issuer: TestIssuer
) -> None:
    headers = bearer(issuer)
    echoed = (await client.get("/tasks/1", headers=headers)).json()
    assert header_values(echoed, "authorization") == [headers["Authorization"]]


async def test_client_identity_headers_are_stripped(
    client: httpx.AsyncClient, issuer: TestIssuer
) -> None:
    forged = {
        "X-User-Id": str(uuid.uuid4()),
        "X-User-Email": "admin@example.com",
        "X-User-Scopes": "admin",
        "X-Forwarded-User": "admin",
        "X-Forwarded-Email": "admin@example.com",
        "X-Auth-Request-User": "admin",
        "X-Authenticated-Userid": "admin",
        "X-Remote-User": "admin",
        "Remote-User": "admin",
        "X-Consumer-Id": "admin",
        "X-Jwt-Payload": "e30",
        "X-Momentum-User": "admin",
        "X-Real-IP": "10.9.9.9",
        "Forwarded": "for=10.9.9.9;proto=https",
        "X-Forwarded-For": "10.9.9.9",
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Proto": "https",
        "X-Custom-Kept": "yes",
    }
    echoed = (await client.get("/tasks/1", headers={**bearer(issuer), **forged})).json()
    names = {k.lower() for k, _ in echoed["headers"]}
    for name in forged:
        if name.lower().startswith("x-forwarded-") or name == "X-Custom-Kept":
            continue
        assert name.lower() not in names, name
    assert header_values(echoed, "x-custom-kept") == ["yes"]
    # The forwarding headers are the gateway's own, not the client's.
    assert header_values(echoed, "x-forwarded-for") == ["127.0.0.1"]
    assert header_values(echoed, "x-forwarded-proto") == ["http"]
    assert header_values(echoed, "x-forwarded-host") == ["testserver"]
    assert not [v for _, v in echoed["headers"] if "10.9.9.9" in v or "evil" in v]


async def test_hop_by_hop_headers_are_dropped_both_ways(
    client: httpx.AsyncClient, issuer: TestIssuer
) -> None:
    headers = {
        **bearer(issuer),
        "Connection": "keep-alive, X-Hop-Secret",
        "X-Hop-Secret": "only for the next hop",
        "Keep-Alive": "timeout=5",
        "TE": "trailers",
        "Upgrade": "websocket",
        "Proxy-Authorization": "Basic Zm9vOmJhcg==",
    }
    response = await client.get("/tasks/1", headers=headers)
    echoed = response.json()
    names = {k.lower() for k, _ in echoed["headers"]}
    assert not names & {"x-hop-secret", "te", "upgrade", "proxy-authorization"}
    # The upstream named X-Secret-Hop in its Connection header: it stops at the gateway.
    assert "x-secret-hop" not in response.headers
    assert "connection" not in response.headers


async def test_request_ids_are_set_upstream_and_returned(
    client: httpx.AsyncClient, issuer: TestIssuer
) -> None:
    response = await client.get(
        "/tasks/1", headers={**bearer(issuer), "X-Request-ID": "req-42.abc"}
    )
    assert response.headers["x-request-id"] == "req-42.abc"
    assert header_values(response.json(), "x-request-id") == ["req-42.abc"]

    insane = await client.get(
        "/tasks/1", headers={**bearer(issuer), "X-Request-ID": "bad id\twith spaces"}
    )
    generated = insane.headers["x-request-id"]
    assert generated != "bad id\twith spaces"
    assert header_values(insane.json(), "x-request-id") == [generated]


@pytest.mark.parametrize(
    ("method", "path", "token", "status"),
    [
        ("GET", "/tasks/1", None, 401),
        ("GET", "/tasks/1", "not.a.token", 401),
        ("POST", "/auth/admin/keys/rotate", "user", 403),
        ("GET", "/tasks/%2e%2e/auth/me", "user", 400),
        ("GET", "/nowhere", None, 404),
        ("GET", "/tasks/slow", "user", 504),
    ],
)
async def test_answers_the_gateway_makes_itself_carry_the_request_id(
    client: httpx.AsyncClient,
    issuer: TestIssuer,
    method: str,
    path: str,
    token: str | None,
    status: int,
) -> None:
    headers = {"X-Request-ID": "client-id-7"}
    if token is not None:
        bearer_token = issuer.mint() if token == "user" else token
        headers["Authorization"] = f"Bearer {bearer_token}"
    response = await client.request(method, path, headers=headers)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers.get_list("x-request-id") == ["client-id-7"]


async def test_request_bodies_arrive_intact(client: httpx.AsyncClient, issuer: TestIssuer) -> None:
    body = bytes(range(256)) * 2000
    response = await client.post(
        "/tasks/1/attachments",
        content=body,
        headers={**bearer(issuer), "Content-Type": "application/octet-stream"},
    )
    echoed = response.json()
    assert echoed["body_length"] == len(body)
    assert echoed["body_sha256"] == hashlib.sha256(body).hexdigest()


async def test_status_and_no_content_pass_through(
    client: httpx.AsyncClient, issuer: TestIssuer
) -> None:
    deleted = await client.delete("/tasks/1", headers=bearer(issuer))
    assert deleted.status_code == 204
    assert deleted.content == b""
    invalid = await client.post("/tasks", json={"nope": 1}, headers=bearer(issuer))
    assert invalid.status_code == 422  # the upstream's own answer, untouched


async def test_a_body_over_1_mib_is_refused_with_413(
    client: httpx.AsyncClient, issuer: TestIssuer
) -> None:
    body = b"x" * (1024 * 1024 + 1)
    response = await client.post("/tasks", content=body, headers=bearer(issuer))
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 413
    exactly = await client.post(
        "/tasks/1/attachments", content=b"x" * (1024 * 1024), headers=bearer(issuer)
    )
    assert exactly.status_code == 200


async def test_a_chunked_body_over_the_limit_is_refused_with_413(
    live_gateway: Callable[..., UvicornThread], issuer: TestIssuer
) -> None:
    gateway = live_gateway()

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"y" * 65536 * 2

    async with httpx.AsyncClient(base_url=gateway.url) as http:
        response = await http.post("/tasks/1/attachments", content=chunks(), headers=bearer(issuer))
        assert response.status_code == 413
        assert response.json()["status"] == 413

        async def small() -> AsyncIterator[bytes]:
            for _ in range(4):
                yield b"z" * 1000

        ok = await http.post("/tasks/1/attachments", content=small(), headers=bearer(issuer))
        assert ok.status_code == 200
        assert ok.json()["body_length"] == 4000


async def test_large_responses_stream_through(
    live_gateway: Callable[..., UvicornThread], issuer: TestIssuer
) -> None:
    gateway = live_gateway()
    size = 3 * 1024 * 1024 + 17
    async with (
        httpx.AsyncClient(base_url=gateway.url) as http,
        http.stream("GET", "/tasks/big", params={"size": size}, headers=bearer(issuer)) as response,
    ):
        assert response.status_code == 200
        received = 0
        pieces = 0
        async for chunk in response.aiter_raw():
            received += len(chunk)
            pieces += 1
    assert received == size
    assert pieces > 1


async def test_x_forwarded_for_is_the_peer_address(
    live_gateway: Callable[..., UvicornThread], issuer: TestIssuer
) -> None:
    gateway = live_gateway()
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        response = await http.get(
            "/tasks/1", headers={**bearer(issuer), "X-Forwarded-For": "203.0.113.9"}
        )
    echoed = response.json()
    assert header_values(echoed, "x-forwarded-for") == ["127.0.0.1"]
    assert response.headers.get("server", "uvicorn") == "uvicorn"
    assert len(response.headers.get_list("date")) == 1


async def test_an_unreachable_upstream_is_503_with_retry_after(
    app_factory: Callable[..., FastAPI], issuer: TestIssuer
) -> None:
    app = app_factory(tasks_url=f"http://127.0.0.1:{closed_port()}")
    async with running_app(app) as http:
        response = await http.get("/tasks/1", headers=bearer(issuer))
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) > 0
    assert "tasks" in response.json()["detail"]


async def test_a_slow_upstream_is_504(client: httpx.AsyncClient, issuer: TestIssuer) -> None:
    response = await client.get("/tasks/slow", headers=bearer(issuer))
    assert response.status_code == 504
    assert response.headers["content-type"] == "application/problem+json"


async def test_an_upstream_that_does_not_speak_http_is_502(
    app_factory: Callable[..., FastAPI], issuer: TestIssuer
) -> None:
    with GarbageServer() as garbage:
        async with running_app(app_factory(analytics_url=garbage.url)) as http:
            response = await http.get("/analytics/streaks", headers=bearer(issuer))
    assert response.status_code == 502
    assert response.headers["content-type"] == "application/problem+json"


async def test_an_upstream_restart_heals_the_pool(
    app_factory: Callable[..., FastAPI], issuer: TestIssuer
) -> None:
    from gateway.tests.support import upstream_app

    port = closed_port()
    first = UvicornThread(upstream_app("tasks"), port=port).start()
    async with running_app(app_factory(tasks_url=first.url)) as http:
        assert (await http.get("/tasks/1", headers=bearer(issuer))).status_code == 200
        first.stop()  # the pooled keep-alive connection is now dead
        assert (await http.get("/tasks/1", headers=bearer(issuer))).status_code == 503
        second = UvicornThread(upstream_app("tasks"), port=port).start()
        try:
            assert (await http.get("/tasks/1", headers=bearer(issuer))).status_code == 200
        finally:
            second.stop()


async def test_an_answer_that_breaks_off_before_it_is_sent_is_502(
    app_factory: Callable[..., FastAPI], issuer: TestIssuer
) -> None:
    partial = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{"
    with GarbageServer(partial) as upstream:
        async with running_app(app_factory(tasks_url=upstream.url)) as http:
            response = await http.get("/tasks/1", headers=bearer(issuer))
    assert response.status_code == 502
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_large_answer_that_breaks_off_is_cut_not_completed(
    live_gateway: Callable[..., UvicornThread], issuer: TestIssuer
) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
    partial = head + b"Content-Length: 1000000\r\n\r\n" + b"x" * 100_000
    with GarbageServer(partial) as upstream:
        gateway = live_gateway(tasks_url=upstream.url)
        async with httpx.AsyncClient(base_url=gateway.url) as http:
            with pytest.raises(httpx.RemoteProtocolError):
                await http.get("/tasks/1", headers=bearer(issuer))
