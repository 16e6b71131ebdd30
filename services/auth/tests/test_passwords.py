"""Password hashing: argon2id at OWASP's minimum or stronger, rehash on sign-in, dummy checks."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlmodel import col

from momentum_auth.app import create_app
from momentum_auth.models import User
from momentum_auth.passwords import PasswordHasher
from momentum_auth.settings import AuthSettings
from momentum_shared.testing.apps import running_app
from services.auth.tests.builders import PASSWORD, new_email, register, sign_in
from services.auth.tests.conftest import make_settings


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


async def stored_hash(app: object, email: str) -> str:
    factory = app.state.session_factory  # type: ignore[attr-defined]
    async with factory() as session:
        user = (await session.exec(sa.select(User).where(col(User.email) == email))).scalars().one()
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
