"""Throttling of sign-ins and password changes, per account, pair and address, in the database."""

from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from momentum_auth import attempts
from momentum_auth.app import create_app
from momentum_auth.passwords import PasswordHasher
from momentum_auth.pruning import pruner
from momentum_auth.state import app_state
from momentum_devtools.testing.apps import running_app
from momentum_shared.db import UnitOfWork
from momentum_shared.events import utcnow
from services.auth.tests.conftest import FAST_HASHING, client_at, make_settings
from services.auth.tests.support import PASSWORD, bearer, new_email, register, sign_in, tokens

WRONG = "not the password"


def assert_throttled(response: httpx.Response) -> int:
    assert response.status_code == 429
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["cache-control"] == "no-store"
    assert response.json()["error"] == "invalid_grant"
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= 3600
    return retry_after


def usernames_only(database_url: str, **overrides: Any) -> FastAPI:
    # A high per-address limit isolates the per-account rules (all requests share one address).
    return create_app(
        make_settings(database_url, throttle_max_failures_per_address=1000, **overrides)
    )


class CountingHasher(PasswordHasher):
    """The real hasher, counting the argon2 operations it runs."""

    def __init__(self) -> None:
        super().__init__(
            memory_cost_kib=FAST_HASHING["password_memory_cost_kib"],
            time_cost=FAST_HASHING["password_time_cost"],
            parallelism=FAST_HASHING["password_parallelism"],
        )
        self.hashes = 0
        self.checks = 0

    async def hash(self, password: str) -> str:
        self.hashes += 1
        return await super().hash(password)

    async def verify(self, password: str, password_hash: str) -> tuple[bool, str | None]:
        self.checks += 1
        return await super().verify(password, password_hash)

    async def verify_dummy(self, password: str) -> None:
        self.checks += 1
        await super().verify_dummy(password)


def counting(app: FastAPI) -> CountingHasher:
    hasher = CountingHasher()
    app_state(app).auth.hasher = hasher
    return hasher


def statuses(responses: list[httpx.Response]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for response in responses:
        counts[response.status_code] = counts.get(response.status_code, 0) + 1
    return counts


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
        settings = app_state(app).settings
        async with UnitOfWork(app_state(app).session_factory) as uow:
            now = utcnow()

            async def wait(at: Any) -> int | None:
                return await attempts.sign_in_retry_after(
                    uow.session, settings, username=user["email"], address="127.0.0.1", now=at
                )

            assert await wait(now)
            assert await wait(now + timedelta(seconds=settings.throttle_window_seconds + 1)) is None
        # The prune job forgets entries older than the longest window.
        later = now + timedelta(seconds=settings.throttle_account_window_seconds + 1)
        result = await pruner(app_state(app).session_factory, settings).prune(now=later)
        assert result.deleted["throttle_entries"] > 0
        async with UnitOfWork(app_state(app).session_factory) as uow:
            assert (
                await attempts.sign_in_retry_after(
                    uow.session, settings, username=user["email"], address="127.0.0.1", now=now
                )
                is None
            )


async def test_wrong_current_passwords_count_too(database_url: str) -> None:
    app = usernames_only(database_url)
    async with running_app(app) as client:
        user = await register(client)
        access = (await tokens(client, user["email"]))["access_token"]
        change = {"current_password": WRONG, "new_password": "a new password"}
        for _ in range(5):
            response = await client.post("/auth/me/password", json=change, headers=bearer(access))
            assert response.status_code == 403
        response = await client.post(
            "/auth/me/password",
            json={"current_password": PASSWORD, "new_password": "a new password"},
            headers=bearer(access),
        )
        assert response.status_code == 429
        assert int(response.headers["retry-after"]) >= 1
        assert_throttled(await sign_in(client, user["email"]))


async def test_concurrent_wrong_guesses_get_exactly_the_limit_of_checks(database_url: str) -> None:
    app = usernames_only(database_url)
    async with running_app(app) as client:
        user = await register(client)
        hasher = counting(app)
        guesses = await asyncio.gather(
            *(sign_in(client, user["email"], password=f"{WRONG} {n}") for n in range(40))
        )
        assert statuses(guesses) == {401: 5, 429: 35}
        assert hasher.checks == 5
        # The right password, racing more wrong ones, never gets through once the limit is spent.
        race = await asyncio.gather(
            sign_in(client, user["email"]),
            *(sign_in(client, user["email"], password=WRONG) for _ in range(10)),
            sign_in(client, user["email"]),
        )
        assert statuses(race) == {429: 12}
        assert hasher.checks == 5


async def test_concurrent_wrong_current_passwords_get_exactly_the_limit(database_url: str) -> None:
    app = usernames_only(database_url, throttle_password_changes_per_user=1000)
    async with running_app(app) as client:
        user = await register(client)
        access = (await tokens(client, user["email"]))["access_token"]
        hasher = counting(app)

        async def change(current: str) -> httpx.Response:
            body = {"current_password": current, "new_password": "a new password"}
            return await client.post("/auth/me/password", json=body, headers=bearer(access))

        guesses = await asyncio.gather(*(change(f"{WRONG} {n}") for n in range(40)))
        assert statuses(guesses) == {403: 5, 429: 35}
        assert hasher.checks == 5
        race = await asyncio.gather(change(PASSWORD), *(change(WRONG) for _ in range(10)))
        assert statuses(race) == {429: 11}
        assert hasher.checks == 5
        # The password did not change.
        assert (await sign_in(client, user["email"], password="a new password")).status_code in {
            401,
            429,
        }


async def test_strangers_cannot_lock_the_owner_out_of_a_usual_address(database_url: str) -> None:
    app = usernames_only(database_url)
    async with running_app(app) as owner:
        user = await register(owner)
        assert (await sign_in(owner, user["email"])).status_code == 200
        async with client_at(app, "203.0.113.9") as attacker:
            answers = [await sign_in(attacker, user["email"], password=WRONG) for _ in range(6)]
            assert [r.status_code for r in answers] == [401] * 5 + [429]
            assert_throttled(answers[-1])
        # Another stranger's address waits too: the account slows down for strangers ...
        async with client_at(app, "198.51.100.20") as stranger:
            assert_throttled(await sign_in(stranger, user["email"], password=WRONG))
        # ... but not for its owner, at the address they signed in from before.
        assert (await sign_in(owner, user["email"], password=WRONG)).status_code == 401
        assert (await sign_in(owner, user["email"])).status_code == 200


async def test_a_scope_refused_after_the_right_password_keeps_the_match(
    database_url: str,
) -> None:
    # The refusal comes after the password matched: the match's upkeep (the address
    # remembered as usual) is committed even though the answer is an error.
    app = usernames_only(database_url)
    async with running_app(app) as owner:
        user = await register(owner)
        refused = await sign_in(owner, user["email"], scope="admin")
        assert refused.status_code == 400
        assert refused.json()["error"] == "invalid_scope"
        async with client_at(app, "203.0.113.9") as attacker:
            answers = [await sign_in(attacker, user["email"], password=WRONG) for _ in range(6)]
            assert [r.status_code for r in answers] == [401] * 5 + [429]
        # The owner's address is usual: the account's delay for strangers does not apply.
        assert (await sign_in(owner, user["email"], password=WRONG)).status_code == 401
        assert (await sign_in(owner, user["email"])).status_code == 200


async def test_a_taken_email_costs_the_same_hashing_as_a_new_one(database_url: str) -> None:
    app = create_app(make_settings(database_url))
    async with running_app(app) as client:
        hasher = counting(app)
        user = await register(client)
        assert hasher.hashes == 1
        again = await client.post(
            "/auth/register", json={"email": user["email"].upper(), "password": PASSWORD}
        )
        assert again.status_code == 409
        assert hasher.hashes == 2


async def test_registrations_per_address_have_a_budget(database_url: str) -> None:
    app = create_app(make_settings(database_url, throttle_registrations_per_address=2))
    async with running_app(app) as client, client_at(app, "198.51.100.30") as other:
        await register(client)
        taken = await register(client)
        response = await client.post(
            "/auth/register", json={"email": taken["email"], "password": PASSWORD}
        )
        assert response.status_code == 429
        assert response.headers["content-type"] == "application/problem+json"
        assert int(response.headers["retry-after"]) >= 1
        # Another address still registers.
        await register(other)


async def test_token_requests_have_a_budget_per_user_and_per_address(database_url: str) -> None:
    app = create_app(
        make_settings(
            database_url, throttle_token_requests_per_user=3, throttle_token_requests_per_address=5
        )
    )
    async with running_app(app) as client, client_at(app, "198.51.100.40") as other:
        first, second = await register(client), await register(client)
        for _ in range(3):
            assert (await sign_in(client, first["email"])).status_code == 200
        # Successful sign-ins count too.
        assert_throttled(await sign_in(client, first["email"]))
        assert_throttled(await sign_in(other, first["email"]))
        for _ in range(2):
            assert (await sign_in(client, second["email"])).status_code == 200
        # The address's budget of five is spent; another address still signs in.
        assert_throttled(await sign_in(client, second["email"]))
        assert (await sign_in(other, second["email"])).status_code == 200


async def test_password_changes_have_a_budget_per_user(database_url: str) -> None:
    app = create_app(make_settings(database_url, throttle_password_changes_per_user=2))
    async with running_app(app) as client:
        user = await register(client)
        access = (await tokens(client, user["email"]))["access_token"]
        passwords = [PASSWORD, "second password", "third password", "fourth password"]
        answers = []
        for current, new in itertools.pairwise(passwords):
            body = {"current_password": current, "new_password": new}
            answers.append(
                await client.post("/auth/me/password", json=body, headers=bearer(access))
            )
        assert [r.status_code for r in answers] == [204, 204, 429]
        assert int(answers[-1].headers["retry-after"]) >= 1


async def test_the_account_delay_doubles_for_each_strangers_failure(database_url: str) -> None:
    app = usernames_only(database_url)
    async with running_app(app) as client:
        user = await register(client)
        settings = app_state(app).settings
        now = utcnow()
        waits = []
        async with UnitOfWork(app_state(app).session_factory) as uow:
            for n in range(9):
                # A new address each time: only the account's rule can refuse.
                attempt = {"account": user["email"], "address": f"198.51.100.{n}", "budget": []}
                reserved = await attempts.reserve_password_check(
                    uow.session, settings, **attempt, now=now
                )
                if isinstance(reserved, int):
                    waits.append(reserved)
                    assert isinstance(
                        await attempts.reserve_password_check(
                            uow.session, settings, **attempt, now=now + timedelta(seconds=1)
                        ),
                        int,
                    )
                    now += timedelta(seconds=reserved)
                    reserved = await attempts.reserve_password_check(
                        uow.session, settings, **attempt, now=now
                    )
                assert not isinstance(reserved, int)
        # Five free failures, then 2 s after the latest, doubling with each further one.
        assert waits == [2, 4, 8, 16]


async def test_two_right_passwords_at_once_both_sign_in(database_url: str) -> None:
    # Both checks match at the same moment: releasing their attempts must not deadlock.
    app = usernames_only(database_url)
    async with running_app(app) as client:
        user = await register(client)
        settings = app_state(app).settings
        now = utcnow()

        async def reserved(uow: UnitOfWork) -> attempts.Reservation:
            reservation = await attempts.reserve_password_check(
                uow.session,
                settings,
                account=user["email"],
                address="198.51.100.7",
                budget=[],
                now=now,
            )
            assert isinstance(reservation, attempts.Reservation)
            return reservation

        async def matched(uow: UnitOfWork, reservation: attempts.Reservation) -> None:
            await attempts.password_matched(uow.session, settings, reservation, now=now)
            await uow.commit()

        for _ in range(3):
            async with (
                UnitOfWork(app_state(app).session_factory) as first,
                UnitOfWork(app_state(app).session_factory) as second,
            ):
                one, two = await reserved(first), await reserved(second)
                await asyncio.gather(matched(first, one), matched(second, two))


async def test_a_full_hashing_pool_spends_no_budget(database_url: str) -> None:
    app = usernames_only(database_url, throttle_token_requests_per_user=3)
    async with running_app(app) as client:
        user = await register(client)
        settings = app_state(app).settings
        now = utcnow()
        budget = attempts.budget_rules(
            settings,
            "token",
            address="198.51.100.8",
            per_address=settings.throttle_token_requests_per_address,
            account=user["email"],
            per_user=settings.throttle_token_requests_per_user,
        )
        for _ in range(5):  # more than the budget: each check could not run (hasher busy)
            async with UnitOfWork(app_state(app).session_factory) as uow:
                reservation = await attempts.reserve_password_check(
                    uow.session,
                    settings,
                    account=user["email"],
                    address="198.51.100.8",
                    budget=budget,
                    now=now,
                )
                assert isinstance(reservation, attempts.Reservation)
                await attempts.release_after_error(uow.session, reservation)
        assert (await sign_in(client, user["email"])).status_code == 200
