"""Racing uses of one refresh token: exactly one wins, the other is treated as a replay."""

from __future__ import annotations

import asyncio

import httpx

from services.auth.tests.support import refresh, register, tokens


async def test_two_concurrent_refreshes_with_one_token(client: httpx.AsyncClient) -> None:
    user = await register(client)
    pair = await tokens(client, user["email"])
    first, second = await asyncio.gather(
        refresh(client, pair["refresh_token"]), refresh(client, pair["refresh_token"])
    )
    statuses = sorted([first.status_code, second.status_code])
    winner = first if first.status_code == 200 else second
    assert statuses == [200, 401]
    # The loser presented a spent token: the family, winner's new token included, is revoked.
    assert (await refresh(client, winner.json()["refresh_token"])).status_code == 401
