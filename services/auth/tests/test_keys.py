"""Signing keys: rotation, publication in the JWKS, encryption at rest, several replicas."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI
from jwt.utils import base64url_decode
from pydantic import SecretStr, ValidationError

from momentum_auth import repository, service
from momentum_auth.app import create_app
from momentum_auth.keys import KeyDecryptionError, KeyEncryption
from momentum_auth.models import SigningKey
from momentum_auth.settings import DEVELOPMENT_KEY_ENCRYPTION_KEY, AuthSettings
from momentum_shared.db import UnitOfWork
from momentum_shared.events import utcnow
from momentum_shared.testing.apps import running_app
from services.auth.tests.builders import (
    bearer,
    decode,
    kid_of,
    make_admin,
    refresh,
    register,
    tokens,
)
from services.auth.tests.conftest import make_settings

STRONG_KEK = "k" * 40


async def published_kids(client: httpx.AsyncClient) -> list[str]:
    return [key["kid"] for key in (await client.get("/.well-known/jwks.json")).json()["keys"]]


async def stored_keys(app: FastAPI) -> list[SigningKey]:
    async with app.state.session_factory() as session:
        rows = (await session.exec(sa.select(SigningKey))).scalars().all()
    return list(rows)


async def test_rotation_keeps_old_tokens_valid_and_signs_with_the_new_key(
    client: httpx.AsyncClient, app: FastAPI, settings: AuthSettings
) -> None:
    admin = await make_admin(app)
    admin_tokens = await tokens(client, admin)
    assert "admin" in admin_tokens["scope"].split()
    user = await register(client)
    old = await tokens(client, user["email"])
    old_kid = kid_of(old["access_token"])
    assert await published_kids(client) == [old_kid]

    response = await client.post(
        "/auth/admin/keys/rotate", headers=bearer(admin_tokens["access_token"])
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"kid", "alg", "created_at"}
    assert body["alg"] == "RS256"
    assert body["created_at"].endswith("Z")
    new_kid = body["kid"]
    assert new_kid != old_kid
    assert set(await published_kids(client)) == {old_kid, new_kid}

    # Tokens signed before the rotation still verify, at auth and against the JWKS.
    assert (await client.get("/auth/me", headers=bearer(old["access_token"]))).is_success
    assert (await decode(client, old["access_token"], issuer=settings.issuer))["sub"] == user["id"]
    # New tokens, from a password or a refresh, carry the new kid and verify.
    fresh = await tokens(client, user["email"])
    renewed = (await refresh(client, old["refresh_token"])).json()
    for pair in (fresh, renewed):
        assert kid_of(pair["access_token"]) == new_kid
        assert (await client.get("/auth/me", headers=bearer(pair["access_token"]))).is_success
        await decode(client, pair["access_token"], issuer=settings.issuer)


async def test_rotation_needs_the_admin_scope(client: httpx.AsyncClient, app: FastAPI) -> None:
    user = await register(client)
    user_tokens = await tokens(client, user["email"])
    forbidden = await client.post(
        "/auth/admin/keys/rotate", headers=bearer(user_tokens["access_token"])
    )
    assert forbidden.status_code == 403
    assert 'scope="admin"' in forbidden.headers["www-authenticate"]
    assert (await client.post("/auth/admin/keys/rotate")).status_code == 401
    # An admin's token narrowed to other scopes cannot rotate either.
    admin = await make_admin(app)
    narrowed = await tokens(client, admin, scope="profile")
    response = await client.post(
        "/auth/admin/keys/rotate", headers=bearer(narrowed["access_token"])
    )
    assert response.status_code == 403
    assert len(await published_kids(client)) == 1


async def test_a_demoted_admin_cannot_rotate(client: httpx.AsyncClient, app: FastAPI) -> None:
    from momentum_auth.models import User

    admin = await make_admin(app)
    access = (await tokens(client, admin))["access_token"]
    async with app.state.session_factory() as session, session.begin():
        await session.exec(sa.update(User).values(is_admin=False))
    response = await client.post("/auth/admin/keys/rotate", headers=bearer(access))
    assert response.status_code == 403


async def test_old_keys_leave_the_jwks_once_their_tokens_expired(
    client: httpx.AsyncClient, app: FastAPI, settings: AuthSettings
) -> None:
    first = (await stored_keys(app))[0]
    async with UnitOfWork(app.state.session_factory) as uow:
        second = await service.rotate_signing_key(uow.session, app.state.auth, now=utcnow())
    retired = next(key for key in await stored_keys(app) if key.kid == first.kid)
    assert retired.retired_at is not None
    assert retired.expires_at is not None
    published_for = (retired.expires_at - retired.retired_at).total_seconds()
    assert published_for == settings.access_token_lifetime_seconds + settings.token_leeway_seconds

    async with UnitOfWork(app.state.session_factory) as uow:
        just_before = retired.expires_at - timedelta(seconds=1)
        kept = await repository.get_published_signing_keys(uow.session, now=just_before)
        assert {key.kid for key in kept} == {first.kid, second.kid}
        await service.maintain(uow.session, app.state.auth, now=just_before)
    assert {key.kid for key in await stored_keys(app)} == {first.kid, second.kid}

    async with UnitOfWork(app.state.session_factory) as uow:
        await service.maintain(uow.session, app.state.auth, now=retired.expires_at)
    # Gone from the table (private key destroyed) and from the JWKS.
    assert [key.kid for key in await stored_keys(app)] == [second.kid]
    assert await published_kids(client) == [second.kid]


async def test_an_ageing_key_is_succeeded_automatically_after_prepublication(
    database_url: str,
) -> None:
    app = create_app(
        make_settings(
            database_url, signing_key_max_age_seconds=3600, signing_key_prepublish_seconds=600
        )
    )

    async def upkeep(at: timedelta) -> SigningKey:
        async with UnitOfWork(app.state.session_factory) as uow:
            return await service.maintain(uow.session, app.state.auth, now=start + at)

    async with running_app(app) as client:
        [first] = await stored_keys(app)
        start = first.activates_at
        assert (await upkeep(timedelta(seconds=2999))).kid == first.kid
        assert await published_kids(client) == [first.kid]

        # Ten minutes before the key is due, its successor is published but does not sign.
        assert (await upkeep(timedelta(seconds=3001))).kid == first.kid
        [successor] = [key for key in await stored_keys(app) if key.kid != first.kid]
        assert successor.activates_at == start + timedelta(seconds=3601)
        assert set(await published_kids(client)) == {first.kid, successor.kid}
        user = await register(client)
        assert kid_of((await tokens(client, user["email"]))["access_token"]) == first.kid
        await upkeep(timedelta(seconds=3300))  # already scheduled: nothing more
        assert len(await stored_keys(app)) == 2

        # From its activation on, the successor signs and the old key is retired as of then.
        active = await upkeep(timedelta(seconds=3601))
        assert active.kid == successor.kid
        [old] = [key for key in await stored_keys(app) if key.kid == first.kid]
        assert old.retired_at == successor.activates_at
        assert old.expires_at == successor.activates_at + timedelta(seconds=900 + 60)
        # And leaves once the last token it could have signed has expired.
        await upkeep(timedelta(seconds=3601 + 960))
        assert [key.kid for key in await stored_keys(app)] == [successor.kid]


async def test_an_admin_rotation_replaces_a_scheduled_successor(database_url: str) -> None:
    app = create_app(
        make_settings(
            database_url, signing_key_max_age_seconds=3600, signing_key_prepublish_seconds=600
        )
    )
    async with running_app(app) as client:
        [first] = await stored_keys(app)
        async with UnitOfWork(app.state.session_factory) as uow:
            later = first.activates_at + timedelta(seconds=3001)
            await service.maintain(uow.session, app.state.auth, now=later)
        async with UnitOfWork(app.state.session_factory) as uow:
            rotated = await service.rotate_signing_key(uow.session, app.state.auth, now=utcnow())
        others = [key for key in await stored_keys(app) if key.kid != rotated.kid]
        assert len(others) == 2
        assert all(key.retired_at is not None for key in others)
        user = await register(client)
        assert kid_of((await tokens(client, user["email"]))["access_token"]) == rotated.kid


async def test_a_key_is_created_on_first_start_and_only_once(database_url: str) -> None:
    app = create_app(make_settings(database_url))
    async with running_app(app) as client:
        kids = await published_kids(client)
    again = create_app(make_settings(database_url))
    async with running_app(again) as client:
        assert await published_kids(client) == kids
    assert len(kids) == 1


async def test_replicas_sign_with_the_same_key_and_serve_the_same_jwks(
    database_url: str,
) -> None:
    first, second = create_app(make_settings(database_url)), create_app(make_settings(database_url))
    async with running_app(first) as one, running_app(second) as two:
        assert await published_kids(one) == await published_kids(two)
        user = await register(one)
        a, b = await tokens(one, user["email"]), await tokens(two, user["email"])
        assert kid_of(a["access_token"]) == kid_of(b["access_token"])
        # A token from one replica is accepted by the other.
        assert (await two.get("/auth/me", headers=bearer(a["access_token"]))).is_success

        async with UnitOfWork(first.state.session_factory) as uow:
            rotated = await service.rotate_signing_key(uow.session, first.state.auth, now=utcnow())
        # The other replica signs with the new key at once and verifies the first's tokens.
        c = await tokens(two, user["email"])
        assert kid_of(c["access_token"]) == rotated.kid
        d = await tokens(one, user["email"])
        assert (await two.get("/auth/me", headers=bearer(d["access_token"]))).is_success
        assert (await one.get("/auth/me", headers=bearer(c["access_token"]))).is_success
        assert await published_kids(one) == await published_kids(two)


async def test_private_keys_are_encrypted_at_rest(app: FastAPI, client: httpx.AsyncClient) -> None:
    [row] = await stored_keys(app)
    jwk = (await client.get("/.well-known/jwks.json")).json()["keys"][0]
    modulus = base64url_decode(jwk["n"].encode())
    # A PKCS#8 private key holds the modulus in clear; the stored bytes must not.
    assert modulus not in row.private_key_encrypted
    assert b"PRIVATE KEY" not in row.private_key_encrypted
    assert "d" not in jwk
    assert "private" not in row.public_jwk.lower()

    der = KeyEncryption(DEVELOPMENT_KEY_ENCRYPTION_KEY).decrypt(
        row.private_key_encrypted, kid=row.kid, kek_id=row.kek_id
    )
    private = serialization.load_der_private_key(der, password=None)
    assert private.public_key().public_numbers().n == int.from_bytes(modulus, "big")  # type: ignore[union-attr]
    with pytest.raises(KeyDecryptionError):
        KeyEncryption(STRONG_KEK).decrypt(row.private_key_encrypted, kid=row.kid, kek_id=row.kek_id)
    # Bound to its row: the same ciphertext under another kid does not decrypt.
    right_kek = KeyEncryption(DEVELOPMENT_KEY_ENCRYPTION_KEY)
    with pytest.raises(KeyDecryptionError):
        right_kek.decrypt(row.private_key_encrypted, kid="another", kek_id=row.kek_id)


async def test_a_wrong_key_encryption_key_makes_the_replica_unready(database_url: str) -> None:
    app = create_app(make_settings(database_url))
    async with running_app(app) as client:
        assert (await client.get("/readyz")).status_code == 200
    wrong = create_app(make_settings(database_url, key_encryption_key=STRONG_KEK))
    async with running_app(wrong) as client:
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"]["signing_key"]["status"] == "failing"


async def test_the_key_encryption_key_can_be_replaced(database_url: str) -> None:
    app = create_app(make_settings(database_url))
    async with running_app(app) as client:
        [old_kid] = await published_kids(client)
    replaced = create_app(
        make_settings(
            database_url,
            key_encryption_key=STRONG_KEK,
            previous_key_encryption_keys=[DEVELOPMENT_KEY_ENCRYPTION_KEY],
        )
    )
    async with running_app(replaced) as client:
        assert (await client.get("/readyz")).status_code == 200
        user = await register(client)
        assert kid_of((await tokens(client, user["email"]))["access_token"]) == old_kid
        async with UnitOfWork(replaced.state.session_factory) as uow:
            key = await service.rotate_signing_key(uow.session, replaced.state.auth, now=utcnow())
        assert key.kek_id == KeyEncryption(STRONG_KEK).kek_id


def test_the_development_key_encryption_key_refuses_production() -> None:
    with pytest.raises(ValidationError, match="development default"):
        AuthSettings(environment="production")
    with pytest.raises(ValidationError, match="at least 32"):
        AuthSettings(environment="production", key_encryption_key=SecretStr("short"))
    with pytest.raises(ValidationError, match="OWASP"):
        AuthSettings(
            environment="production", key_encryption_key=SecretStr(STRONG_KEK), password_time_cost=1
        )
    production = AuthSettings(environment="production", key_encryption_key=SecretStr(STRONG_KEK))
    assert production.signing_key_bits >= 2048
    # The development default is fine in development and in tests.
    assert AuthSettings(environment="development").key_encryption_key.get_secret_value()


def test_defaults_follow_the_contract() -> None:
    defaults = AuthSettings()
    assert defaults.access_token_lifetime_seconds == 900
    assert defaults.refresh_idle_lifetime_seconds == 30 * 24 * 3600
    assert defaults.refresh_absolute_lifetime_seconds == 90 * 24 * 3600
    assert defaults.throttle_max_failures == 5
    assert defaults.throttle_window_seconds == 900
    assert defaults.signing_key_bits >= 2048
    # OWASP's argon2id minimum: m = 19 MiB, t = 2, p = 1.
    assert defaults.password_memory_cost_kib >= 19 * 1024
    assert defaults.password_time_cost >= 2
    assert defaults.password_parallelism >= 1
    with pytest.raises(ValidationError):
        AuthSettings(signing_key_bits=1024)
    with pytest.raises(ValidationError, match="prepublish"):
        AuthSettings(signing_key_max_age_seconds=600, signing_key_prepublish_seconds=600)
