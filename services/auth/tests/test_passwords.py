"""Password hashing: argon2id at OWASP's minimum or stronger, rehash on sign-in, dummy checks."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlmodel import col, select

from momentum_auth.app import create_app
from momentum_auth.models import User
from momentum_auth.passwords import PasswordHasher, available_cpus
from momentum_auth.settings import AuthSettings
from momentum_auth.state import app_state
from momentum_devtools.testing.apps import running_app
from services.auth.tests.conftest import client_at, make_settings
from services.auth.tests.support import PASSWORD, new_email, refresh, register, sign_in, tokens


async def test_default_parameters_are_argon2id_at_owasp_minimum_or_stronger() -> None:
    defaults = AuthSettings()
    hasher = PasswordHasher(
        memory_cost_kib=defaults.password_memory_cost_kib,
        time_cost=defaults.password_time_cost,
        parallelism=defaults.password_parallelism,
    )
    hashed = await hasher.hash(PASSWORD)
    variant, version, params = hashed.split("$")[1:4]
    assert (variant, version) == ("argon2id", "v=19")
    values = dict(part.split("=") for part in params.split(","))
    assert int(values["m"]) >= 19 * 1024
    assert int(values["t"]) >= 2
    assert int(values["p"]) >= 1
    assert (await hasher.verify(PASSWORD, hashed)) == (True, None)
    assert (await hasher.verify("wrong password", hashed))[0] is False


async def stored_hash(app: FastAPI, email: str) -> str:
    factory = app_state(app).session_factory
    async with factory() as session:
        user = (await session.exec(select(User).where(col(User.email) == email))).one()
    return str(user.password_hash)


async def test_sign_in_rehashes_when_the_parameters_change(database_url: str) -> None:
    weak = create_app(make_settings(database_url))
    async with running_app(weak) as client:
        user = await register(client)
        before = await stored_hash(weak, user["email"])
    assert "m=1024,t=1,p=1" in before

    stronger = create_app(
        make_settings(database_url, password_memory_cost_kib=2048, password_time_cost=2)
    )
    async with running_app(stronger) as client:
        assert (await sign_in(client, user["email"], password="wrong password")).status_code == 401
        assert await stored_hash(stronger, user["email"]) == before  # a failure changes nothing
        assert (await sign_in(client, user["email"])).status_code == 200
        after = await stored_hash(stronger, user["email"])
        assert after != before
        assert "m=2048,t=2,p=1" in after
        # The upgraded hash still holds the same password.
        assert (await sign_in(client, user["email"])).status_code == 200
        assert await stored_hash(stronger, user["email"]) == after


async def test_an_unknown_or_malformed_username_costs_one_argon2_check_like_a_wrong_password(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Timing is not asserted; the work is counted instead, at the call that does it.
    checks: list[str] = []
    real_verify = Argon2Hasher.verify

    def counting_verify(self: Argon2Hasher, password: str | bytes, hash: str | bytes) -> bool:
        checks.append("argon2")
        return real_verify(self, password, hash)

    monkeypatch.setattr(Argon2Hasher, "verify", counting_verify)
    user = await register(client)
    for username in (user["email"], new_email(), "not an email at all"):
        checks.clear()
        response = await sign_in(client, username, password="not the password")
        assert response.status_code == 401
        assert checks == ["argon2"], username


def test_the_hashing_pool_is_sized_from_the_cgroup_quota_never_the_node(tmp_path: Path) -> None:
    import os

    affinity = len(os.sched_getaffinity(0))
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("50000 100000\n")  # half a CPU
    assert available_cpus(v2) == 1
    (v2 / "cpu.max").write_text(f"{150000 * affinity} 100000\n")  # more than the pinned CPUs
    assert available_cpus(v2) == affinity
    (v2 / "cpu.max").write_text("max 100000\n")
    assert available_cpus(v2) == affinity
    v1 = tmp_path / "v1" / "cpu,cpuacct"
    v1.mkdir(parents=True)
    (v1 / "cpu.cfs_quota_us").write_text("100000\n")
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    assert available_cpus(tmp_path / "v1") == 1
    (v1 / "cpu.cfs_quota_us").write_text("-1\n")
    assert available_cpus(tmp_path / "v1") == affinity
    assert available_cpus(tmp_path / "none") == affinity


# Slow enough that every request below reaches the hasher while the first hash still runs.
SLOW_HASHING = {"password_memory_cost_kib": 64 * 1024, "password_time_cost": 6}


async def test_sign_ins_beyond_the_hashing_capacity_get_503_with_retry_after(
    database_url: str,
) -> None:
    app = create_app(
        make_settings(
            database_url,
            password_hashing_workers=1,
            password_hashing_queue_length=1,
            **SLOW_HASHING,
        )
    )
    async with running_app(app):

        async def attempt(number: int) -> httpx.Response:
            async with client_at(app, f"198.51.100.{number}") as client:
                return await sign_in(client, new_email(), password="not the password")

        responses = await asyncio.gather(*(attempt(number) for number in range(8)))
    statuses = sorted(response.status_code for response in responses)
    busy = [response for response in responses if response.status_code == 503]
    # One hash runs, one waits; the others are refused at once instead of queueing (a slow
    # machine may let a third in when the first hash ends before the last request arrives).
    assert statuses.count(401) in (2, 3), statuses
    assert len(busy) == 8 - statuses.count(401), statuses
    assert app_state(app).auth.hasher.refused == len(busy)
    for response in busy:
        assert response.headers["content-type"] == "application/problem+json"
        assert int(response.headers["retry-after"]) >= 1
        assert response.headers["cache-control"] == "no-store"
        assert response.json()["error"] == "temporarily_unavailable"
        assert response.json()["status"] == 503


async def test_a_sign_in_flood_keeps_refresh_grants_served(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """During a flood of sign-ins, argon2id never runs on more threads than the pool has (so
    it cannot take the CPU the event loop needs), the overflow is turned away with 503, and
    refresh grants, which hash nothing, are all served."""
    running = 0
    most_at_once = 0
    lock = threading.Lock()

    def counted(method: Callable[..., object]) -> Callable[..., object]:
        def wrapper(*args: object, **kwargs: object) -> object:
            nonlocal running, most_at_once
            with lock:
                running += 1
                most_at_once = max(most_at_once, running)
            try:
                return method(*args, **kwargs)
            finally:
                with lock:
                    running -= 1

        return wrapper

    for name in ("hash", "verify", "verify_and_update"):
        monkeypatch.setattr(PasswordHash, name, counted(getattr(PasswordHash, name)))
    # A pool of one thread, as on a one-CPU container; each check costs ~0.1 s of a CPU.
    settings = make_settings(
        database_url,
        password_memory_cost_kib=19 * 1024,
        password_time_cost=6,
        password_hashing_workers=1,
        password_hashing_queue_length=1,
    )
    app = create_app(settings)
    async with running_app(app) as client, contextlib.AsyncExitStack() as stack:
        user = await register(client)
        refresh_token = (await tokens(client, user["email"]))["refresh_token"]
        flooders = [
            await stack.enter_async_context(client_at(app, f"10.0.0.{number}"))
            for number in range(20)
        ]
        statuses: list[int] = []

        async def one_sign_in(flooder: httpx.AsyncClient) -> None:
            response = await sign_in(flooder, new_email(), password="not the password")
            statuses.append(response.status_code)

        # An open-loop flood: 50 anonymous sign-ins a second from 20 addresses, whether or not
        # the earlier ones were answered (more argon2id than one thread can do).
        pending: set[asyncio.Task[None]] = set()

        async def flood() -> None:
            for flooder in itertools.cycle(flooders):
                task = asyncio.create_task(one_sign_in(flooder))
                pending.add(task)
                task.add_done_callback(pending.discard)
                await asyncio.sleep(1 / 50)

        flooding = asyncio.create_task(flood())
        try:
            await asyncio.sleep(0.4)
            for _ in range(10):
                response = await refresh(client, refresh_token)
                assert response.status_code == 200, response.text
                refresh_token = response.json()["refresh_token"]
        finally:
            flooding.cancel()
            for task in list(pending):
                task.cancel()
            await asyncio.gather(flooding, *pending, return_exceptions=True)
            await asyncio.sleep(0.4)  # let the hashes already running finish
    assert 503 in statuses
    assert most_at_once == 1
