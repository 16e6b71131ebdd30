"""Throttling of failed sign-ins, per username and per client address, in the database."""

from __future__ import annotations

from datetime import timedelta

import httpx
from fastapi import FastAPI

from momentum_auth import service
from momentum_auth.app import create_app
from momentum_shared.db import UnitOfWork
from momentum_shared.events import utcnow
from momentum_shared.testing.apps import running_app
from services.auth.tests.builders import PASSWORD, bearer, new_email, register, sign_in, tokens
from services.auth.tests.conftest import client_at, make_settings

WRONG = "not the password"


def assert_throttled(response: httpx.Response) -> int:
    assert response.status_code == 429
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["cache-control"] == "no-store"
    assert response.json()["error"] == "invalid_grant"
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= 900
    return retry_after


def usernames_only(database_url: str) -> FastAPI:
    # A high per-address limit isolates the per-username rule (all requests share one address).
    return create_app(make_settings(database_url, throttle_max_failures_per_address=1000))


async def test_five_failures_lock_the_username(database_url: str) -> None:
    app = usernames_only(database_url)
    async with running_app(app) as client:
        user = await register(client)
        for _ in range(5):
            assert (await sign_in(client, user["email"], password=WRONG)).status_code == 401
        assert_throttled(await sign_in(client, user["email"], password=WRONG))
        # Even the right password waits: the lock is on the username, not on the guess.
        assert_throttled(await sign_in(client, user["email"]))
        # The username is normalised: another spelling is the same account.
        assert_throttled(await sign_in(client, user["email"].upper()))
        # Another user is not affected.
        other = await register(client)
        assert (await sign_in(client, other["email"])).status_code == 200


async def test_unknown_usernames_are_locked_the_same_way(database_url: str) -> None:
    app = usernames_only(database_url)
    async with running_app(app) as client:
        user = await register(client)
        unknown = new_email()
        known_answers, unknown_answers = [], []
        for _ in range(6):
            known_answers.append(await sign_in(client, user["email"], password=WRONG))
            unknown_answers.append(await sign_in(client, unknown, password=WRONG))
        for known, stranger in zip(known_answers, unknown_answers, strict=True):
            assert known.status_code == stranger.status_code
            assert set(known.headers) == set(stranger.headers)
            assert known.json()["error"] == stranger.json()["error"]
            assert known.json()["title"] == stranger.json()["title"]
        assert [r.status_code for r in known_answers] == [401] * 5 + [429]
        assert_throttled(known_answers[-1])
        assert_throttled(unknown_answers[-1])


async def test_a_success_resets_the_username_count(database_url: str) -> None:
    app = usernames_only(database_url)
    async with running_app(app) as client:
        user = await register(client)
        for _ in range(4):
            await sign_in(client, user["email"], password=WRONG)
        assert (await sign_in(client, user["email"])).status_code == 200
        for _ in range(4):
            assert (await sign_in(client, user["email"], password=WRONG)).status_code == 401
        # Nine failures in the window, but only four since the success.
        assert (await sign_in(client, user["email"], password=WRONG)).status_code == 401
        assert_throttled(await sign_in(client, user["email"], password=WRONG))


async def test_failures_per_client_address(database_url: str) -> None:
    app = create_app(make_settings(database_url, throttle_max_failures_per_address=5))
    async with running_app(app) as client, client_at(app, "203.0.113.9") as attacker:
        victim = await register(client)
        for _ in range(5):
            # Five different usernames from one address: no username is locked ...
            assert (await sign_in(attacker, new_email(), password=WRONG)).status_code == 401
        # ... but the address is, even for a real account with the right password.
        assert_throttled(await sign_in(attacker, victim["email"]))
        # Everyone else still signs in.
        assert (await sign_in(client, victim["email"])).status_code == 200


async def test_failures_are_shared_by_replicas(database_url: str) -> None:
    first, second = usernames_only(database_url), usernames_only(database_url)
    async with running_app(first) as one, running_app(second) as two:
        user = await register(one)
        for _ in range(5):
            assert (await sign_in(one, user["email"], password=WRONG)).status_code == 401
        assert_throttled(await sign_in(two, user["email"]))


async def test_the_lock_lifts_after_the_window(database_url: str) -> None:
    app = usernames_only(database_url)
    async with running_app(app) as client:
        user = await register(client)
        for _ in range(5):
            await sign_in(client, user["email"], password=WRONG)
        settings = app.state.settings
        keys = service.throttle_keys(settings, user["email"], "127.0.0.1")
        async with UnitOfWork(app.state.session_factory) as uow:
            now = utcnow()
            assert await service.throttle_retry_after(uow.session, settings, keys, now=now)
            later = now + timedelta(seconds=settings.throttle_window_seconds + 1)
            assert (
                await service.throttle_retry_after(uow.session, settings, keys, now=later) is None
            )
            # Upkeep forgets failures older than the window.
            await service.maintain(uow.session, app.state.auth, now=later)
            assert await service.throttle_retry_after(uow.session, settings, keys, now=now) is None


async def test_wrong_current_passwords_count_too(database_url: str) -> None:
    app = usernames_only(database_url)
    async with running_app(app) as client:
        user = await register(client)
        access = (await tokens(client, user["email"]))["access_token"]
        change = {"current_password": WRONG, "new_password": "a new password"}
        for _ in range(5):
            response = await client.post("/auth/me/password", json=change, headers=bearer(access))
            assert response.status_code == 401
        response = await client.post(
            "/auth/me/password",
            json={"current_password": PASSWORD, "new_password": "a new password"},
            headers=bearer(access),
        )
        assert response.status_code == 429
        assert int(response.headers["retry-after"]) >= 1
        assert_throttled(await sign_in(client, user["email"]))
