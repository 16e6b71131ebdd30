"""Which client address the per-address limits see, at the gateway and at auth behind it.

The gateway and a stand-in for auth run under uvicorn with proxy headers on, as deployed;
the stand-in echoes the address uvicorn gave it, which is what auth's throttle keys on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from gateway.tests.support import UvicornThread, header_values, upstream_app
from momentum_devtools.devstack import DevStack
from momentum_devtools.testing.issuer import TestIssuer


@pytest.fixture
def auth_behind_gateway() -> Iterator[Callable[[str | None], UvicornThread]]:
    started: list[UvicornThread] = []

    def start(forwarded_allow_ips: str | None) -> UvicornThread:
        server = UvicornThread(
            upstream_app("auth"), proxy_headers=True, forwarded_allow_ips=forwarded_allow_ips
        ).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


async def register_statuses(http: httpx.AsyncClient, forwarded: list[str]) -> list[int]:
    return [
        (
            await http.post(
                "/auth/register", json={"name": "x"}, headers={"X-Forwarded-For": value}
            )
        ).status_code
        for value in forwarded
    ]


async def test_under_make_up_a_forged_x_forwarded_for_changes_no_address(
    live_gateway: Callable[..., UvicornThread],
    auth_behind_gateway: Callable[[str | None], UvicornThread],
    issuer: TestIssuer,
    tmp_path: Path,
) -> None:
    stack = DevStack({"MOMENTUM_DATA_DIR": str(tmp_path)}, echo=False)
    auth = auth_behind_gateway(stack.child_env("auth").get("FORWARDED_ALLOW_IPS"))
    gateway = live_gateway(
        proxy_headers=True,
        forwarded_allow_ips=stack.child_env("gateway").get("FORWARDED_ALLOW_IPS"),
        auth_url=auth.url,
        rate_limit_address_per_second=0.01,
        rate_limit_address_burst=2,
    )
    async with httpx.AsyncClient(base_url=gateway.url, timeout=5) as http:
        me = await http.get(
            "/auth/me", headers={**issuer.bearer(), "X-Forwarded-For": "6.6.6.6, 10.9.9.9"}
        )
        assert me.status_code == 200
        echoed = me.json()
        # Auth sees the real client, and the gateway passed on no part of the forged chain.
        assert echoed["client"] == "127.0.0.1"
        assert header_values(echoed, "x-forwarded-for") == ["127.0.0.1"]
        # A fresh forged address per request does not refill the gateway's bucket.
        assert await register_statuses(http, ["10.8.1.1", "10.8.2.1", "10.8.3.1"]) == [
            201,
            201,
            429,
        ]


async def test_behind_a_trusted_proxy_the_rightmost_untrusted_hop_is_the_client(
    live_gateway: Callable[..., UvicornThread],
    auth_behind_gateway: Callable[[str | None], UvicornThread],
    issuer: TestIssuer,
) -> None:
    # The test client plays the ingress (127.0.0.1); auth trusts the gateway alone.
    auth = auth_behind_gateway("127.0.0.1")
    gateway = live_gateway(
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
        auth_url=auth.url,
        rate_limit_address_per_second=0.01,
        rate_limit_address_burst=1,
    )
    async with httpx.AsyncClient(base_url=gateway.url, timeout=5) as http:
        # The client wrote "6.6.6.6"; the ingress appended the address it saw.
        me = await http.get(
            "/auth/me", headers={**issuer.bearer(), "X-Forwarded-For": "6.6.6.6, 203.0.113.7"}
        )
        echoed = me.json()
        assert echoed["client"] == "203.0.113.7"
        assert header_values(echoed, "x-forwarded-for") == ["203.0.113.7"]
        statuses = await register_statuses(
            http, ["6.6.6.6, 203.0.113.7", "7.7.7.7, 203.0.113.7", "203.0.113.8"]
        )
        assert statuses == [201, 429, 201]
