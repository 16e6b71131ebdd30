"""Signing keys: rotation, publication in the JWKS, encryption at rest, several replicas."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI
from jwt.utils import base64url_decode, base64url_encode
from pydantic import SecretStr, ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select

from momentum_auth.app import build_context, create_app
from momentum_auth.models import SigningKey
from momentum_auth.settings import DEVELOPMENT_KEY_ENCRYPTION_KEY, AuthSettings
from momentum_auth.signing_keys import rotation
from momentum_auth.signing_keys.crypto import KeyDecryptionError, KeyEncryption
from momentum_auth.signing_keys.repository import SigningKeyRepository
from momentum_auth.state import app_state
from momentum_auth.upkeep import maintain
from momentum_devtools.testing.apps import running_app
from momentum_devtools.testing.databases import DatabaseTemplates
from momentum_shared.db import UnitOfWork, create_engine, create_session_factory
from momentum_shared.events import utcnow
from momentum_shared.security import JwksCache, TokenVerifier
from momentum_shared.state import shared_state
from services.auth.tests.conftest import ALEMBIC_INI, make_settings
from services.auth.tests.support import (
    bearer,
    decode,
    kid_of,
    make_admin,
    refresh,
    register,
    tokens,
)

STRONG_KEK = "Pa2No5qS8fokPnYJVd6w4IlFXKP9WDJyKTJqTrUj_Sk"


async def published_kids(client: httpx.AsyncClient) -> list[str]:
    return [key["kid"] for key in (await client.get("/.well-known/jwks.json")).json()["keys"]]


async def stored_keys(app: FastAPI) -> list[SigningKey]:
    async with app_state(app).session_factory() as session:
        rows = (await session.exec(select(SigningKey))).all()
    return list(rows)


async def key_in_role(app: FastAPI, role: str) -> SigningKey:
    [key] = [key for key in await stored_keys(app) if key.role == role]
    return key


async def rotate(client: httpx.AsyncClient, admin_access: str) -> str:
    response = await client.post("/auth/admin/keys/rotate", headers=bearer(admin_access))
    assert response.status_code == 201, response.text
    kid: str = response.json()["kid"]
    return kid


async def test_rotation_promotes_the_published_next_key_and_keeps_old_tokens_valid(
    client: httpx.AsyncClient, app: FastAPI, settings: AuthSettings
) -> None:
    admin = await make_admin(app)
    admin_tokens = await tokens(client, admin)
    assert "admin" in admin_tokens["scope"].split()
    user = await register(client)
    old = await tokens(client, user["email"])
    old_kid = kid_of(old["access_token"])
    before = await published_kids(client)
    # The JWKS holds the signing key and, already, the key that signs after the next rotation.
    assert len(before) == 2
    [next_kid] = [kid for kid in before if kid != old_kid]

    response = await client.post(
        "/auth/admin/keys/rotate", headers=bearer(admin_tokens["access_token"])
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"kid", "alg", "created_at"}
    assert body["alg"] == "RS256"
    assert body["created_at"].endswith("Z")
    assert body["kid"] == next_kid
    after = await published_kids(client)
    # The old key stays for its tokens; a fresh next key is published at once.
    assert len(after) == 3
    assert set(after) > {old_kid, next_kid}

    # Tokens signed before the rotation still verify, at auth and against the JWKS.
    assert (await client.get("/auth/me", headers=bearer(old["access_token"]))).is_success
    assert (await decode(client, old["access_token"], issuer=settings.issuer))["sub"] == user["id"]
    # New tokens, from a password or a refresh, carry the new kid and verify.
    fresh = await tokens(client, user["email"])
    renewed = (await refresh(client, old["refresh_token"])).json()
    for pair in (fresh, renewed):
        assert kid_of(pair["access_token"]) == next_kid
        assert (await client.get("/auth/me", headers=bearer(pair["access_token"]))).is_success
        await decode(client, pair["access_token"], issuer=settings.issuer)


async def test_a_verifier_that_cached_the_jwks_before_a_rotation_needs_no_refetch_after_it(
    client: httpx.AsyncClient, app: FastAPI, settings: AuthSettings
) -> None:
    # A gateway's cache: the clock never moves, so neither the TTL nor the unknown-kid
    # cooldown lets it fetch again; a kid it does not hold yet would be refused.
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://auth") as http:
        jwks = JwksCache("http://auth/.well-known/jwks.json", client=http, clock=lambda: 1000.0)
        verifier = TokenVerifier(
            jwks, issuer=settings.issuer, audience=settings.token_audience, leeway=60
        )
        user = await register(client)
        before = await tokens(client, user["email"])
        assert (await verifier.verify(before["access_token"])).user_id == uuid.UUID(user["id"])
        assert jwks.fetch_count == 1

        admin = await make_admin(app)
        new_kid = await rotate(client, (await tokens(client, admin))["access_token"])
        after = await tokens(client, user["email"])
        assert kid_of(after["access_token"]) == new_kid != kid_of(before["access_token"])
        assert (await verifier.verify(after["access_token"])).user_id == uuid.UUID(user["id"])
        assert (await verifier.verify(before["access_token"])).user_id == uuid.UUID(user["id"])
        assert jwks.fetch_count == 1
        await jwks.aclose()


async def test_rotation_needs_the_admin_scope(client: httpx.AsyncClient, app: FastAPI) -> None:
    before = await published_kids(client)
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
    assert await published_kids(client) == before


async def test_a_demoted_admin_cannot_rotate(client: httpx.AsyncClient, app: FastAPI) -> None:
    from momentum_auth.models import User

    admin = await make_admin(app)
    access = (await tokens(client, admin))["access_token"]
    async with app_state(app).session_factory() as session, session.begin():
        await session.exec(sa.update(User).values(is_admin=False))
    response = await client.post("/auth/admin/keys/rotate", headers=bearer(access))
    assert response.status_code == 403


async def test_old_keys_leave_the_jwks_once_their_tokens_expired(
    client: httpx.AsyncClient, app: FastAPI, settings: AuthSettings
) -> None:
    first = await key_in_role(app, "active")
    async with UnitOfWork(app_state(app).session_factory) as uow:
        second = await rotation.rotate_signing_key(uow.session, app_state(app).auth, now=utcnow())
    third = await key_in_role(app, "next")
    retired = next(key for key in await stored_keys(app) if key.kid == first.kid)
    assert retired.role is None
    assert retired.retired_at is not None
    assert retired.expires_at is not None
    published_for = (retired.expires_at - retired.retired_at).total_seconds()
    assert published_for == settings.access_token_lifetime_seconds + settings.token_leeway_seconds
    everything = {first.kid, second.kid, third.kid}

    async with UnitOfWork(app_state(app).session_factory) as uow:
        just_before = retired.expires_at - timedelta(seconds=1)
        kept = await SigningKeyRepository(uow.session).get_published(now=just_before)
        assert {key.kid for key in kept} == everything
        await maintain(uow.session, app_state(app).auth, now=just_before)
    assert {key.kid for key in await stored_keys(app)} == everything

    async with UnitOfWork(app_state(app).session_factory) as uow:
        await maintain(uow.session, app_state(app).auth, now=retired.expires_at)
    # Gone from the table (private key destroyed) and from the JWKS.
    assert {key.kid for key in await stored_keys(app)} == {second.kid, third.kid}
    assert set(await published_kids(client)) == {second.kid, third.kid}


async def test_an_ageing_key_is_rotated_automatically_to_the_published_next_key(
    database_url: str,
) -> None:
    app = create_app(make_settings(database_url, signing_key_max_age_seconds=3600))

    async def upkeep(at: timedelta) -> SigningKey:
        async with UnitOfWork(app_state(app).session_factory) as uow:
            return await maintain(uow.session, app_state(app).auth, now=start + at)

    async with running_app(app) as client:
        first, upcoming = await key_in_role(app, "active"), await key_in_role(app, "next")
        assert first.activates_at is not None
        assert upcoming.activates_at is None
        start = first.activates_at
        assert (await upkeep(timedelta(seconds=3599))).kid == first.kid
        assert set(await published_kids(client)) == {first.kid, upcoming.kid}
        user = await register(client)
        assert kid_of((await tokens(client, user["email"]))["access_token"]) == first.kid

        # At its maximum age the key that has been published all along takes over.
        active = await upkeep(timedelta(seconds=3600))
        assert active.kid == upcoming.kid
        assert active.activates_at == start + timedelta(seconds=3600)
        successor = await key_in_role(app, "next")
        assert successor.kid not in {first.kid, upcoming.kid}
        [old] = [key for key in await stored_keys(app) if key.kid == first.kid]
        assert old.retired_at == active.activates_at
        assert old.expires_at == active.activates_at + timedelta(seconds=900 + 60)
        assert (await upkeep(timedelta(seconds=3700))).kid == upcoming.kid  # not due again
        # The old key leaves once the last token it could have signed has expired.
        await upkeep(timedelta(seconds=3600 + 960))
        assert {key.kid for key in await stored_keys(app)} == {upcoming.kid, successor.kid}


async def test_a_lost_next_key_is_replaced_and_promoted_only_after_a_jwks_lifetime(
    database_url: str,
) -> None:
    app = create_app(
        make_settings(database_url, signing_key_max_age_seconds=3600, jwks_max_age_seconds=300)
    )

    async def upkeep(at: datetime) -> SigningKey:
        async with UnitOfWork(app_state(app).session_factory) as uow:
            return await maintain(uow.session, app_state(app).auth, now=at)

    async with running_app(app):
        first = await key_in_role(app, "active")
        assert first.activates_at is not None
        async with app_state(app).session_factory() as session, session.begin():
            await session.exec(sa.delete(SigningKey).where(col(SigningKey.role) == "next"))
        due = first.activates_at + timedelta(seconds=4000)
        # Overdue, but a next key made now is unknown to cached JWKS: publish it, keep signing.
        assert (await upkeep(due)).kid == first.kid
        replacement = await key_in_role(app, "next")
        assert replacement.created_at == due
        assert (await upkeep(due + timedelta(seconds=299))).kid == first.kid
        assert (await upkeep(due + timedelta(seconds=300))).kid == replacement.kid


async def test_a_key_is_created_on_first_start_and_only_once(database_url: str) -> None:
    app = create_app(make_settings(database_url))
    async with running_app(app) as client:
        kids = await published_kids(client)
        assert {key.role for key in await stored_keys(app)} == {"active", "next"}
    again = create_app(make_settings(database_url))
    async with running_app(again) as client:
        assert await published_kids(client) == kids
    assert len(kids) == 2


async def test_replicas_starting_at_once_create_one_active_and_one_next_key(
    database_url: str,
) -> None:
    settings = make_settings(database_url)
    contexts = [build_context(settings) for _ in range(4)]
    engines = [create_engine(database_url, pool_size=1) for _ in contexts]

    async def first_start(index: int) -> tuple[str, str]:
        async with UnitOfWork(create_session_factory(engines[index])) as uow:
            active, upcoming = await rotation.ensure_signing_keys(
                uow.session, contexts[index], now=utcnow()
            )
        return active.kid, upcoming.kid

    try:
        results = await asyncio.gather(*(first_start(index) for index in range(4)))
        async with engines[0].connect() as connection:
            query = sa.select(col(SigningKey.kid), col(SigningKey.role))
            rows = (await connection.execute(query)).all()
    finally:
        for engine in engines:
            await engine.dispose()
    assert len(set(results)) == 1
    assert sorted((role, kid) for kid, role in rows) == sorted(
        [("active", results[0][0]), ("next", results[0][1])]
    )


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

        async with UnitOfWork(app_state(first).session_factory) as uow:
            rotated = await rotation.rotate_signing_key(
                uow.session, app_state(first).auth, now=utcnow()
            )
        # The other replica signs with the new key at once and verifies the first's tokens.
        c = await tokens(two, user["email"])
        assert kid_of(c["access_token"]) == rotated.kid
        d = await tokens(one, user["email"])
        assert (await two.get("/auth/me", headers=bearer(d["access_token"]))).is_success
        assert (await one.get("/auth/me", headers=bearer(c["access_token"]))).is_success
        assert await published_kids(one) == await published_kids(two)


@pytest.fixture
def postgresql_url(database_templates: DatabaseTemplates, tmp_path: Path) -> Iterator[str]:
    with database_templates.database(ALEMBIC_INI, "postgresql", tmp_path) as url:
        yield url


async def test_concurrent_rotations_on_replicas_promote_the_next_key_once(
    postgresql_url: str,
) -> None:
    """Rotations that race (admin route and age-based, on two replicas) make one rotation."""
    replicas = [
        create_app(make_settings(postgresql_url, signing_key_max_age_seconds=3600))
        for _ in range(2)
    ]
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(running_app(app)) for app in replicas]
        old, upcoming = (
            await key_in_role(replicas[0], "active"),
            await key_in_role(replicas[0], "next"),
        )
        assert old.activates_at is not None
        overdue = old.activates_at + timedelta(seconds=3600)
        admin = (await tokens(clients[0], await make_admin(replicas[0])))["access_token"]

        async def automatic(app: FastAPI) -> str:
            async with UnitOfWork(app_state(app).session_factory) as uow:
                return (await maintain(uow.session, app_state(app).auth, now=overdue)).kid

        blocker = create_engine(postgresql_url, pool_size=2)
        stack.push_async_callback(blocker.dispose)
        async with blocker.connect() as holding, blocker.connect() as watching:
            # Hold the active key's row, so that every rotation reads the same keys and then
            # queues on that row: they are all in the race when it is released.
            await holding.execute(
                sa.text("SELECT kid FROM signing_keys WHERE role = 'active' FOR UPDATE")
            )
            racing = [asyncio.create_task(rotate(client, admin)) for client in clients]
            racing += [asyncio.create_task(automatic(app)) for app in replicas]
            await wait_for_lock_waiters(watching, len(racing))
            await holding.rollback()
            results = await asyncio.gather(*racing)

        # One rotation happened; every caller was told the key that signs now.
        assert results == [upcoming.kid] * len(racing)
        keys = {key.kid: key for key in await stored_keys(replicas[0])}
        assert len(keys) == 3
        assert keys[upcoming.kid].role == "active"
        assert keys[old.kid].role is None
        assert keys[old.kid].expires_at is not None
        [fresh] = [key for key in keys.values() if key.kid not in {old.kid, upcoming.kid}]
        assert fresh.role == "next"
        for client in clients:
            assert set(await published_kids(client)) == set(keys)
        user = await register(clients[1])
        assert kid_of((await tokens(clients[1], user["email"]))["access_token"]) == upcoming.kid


async def wait_for_lock_waiters(connection: AsyncConnection, count: int) -> None:
    """Until ``count`` sessions of this database wait on a lock (the race is set)."""
    query = sa.text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    for _ in range(600):
        waiting = (await connection.execute(query)).scalar_one()
        await connection.commit()  # a new snapshot of pg_stat_activity for the next look
        if waiting >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"only {waiting} of {count} rotations reached the active key's row")


async def test_private_keys_are_encrypted_at_rest(app: FastAPI, client: httpx.AsyncClient) -> None:
    row = await key_in_role(app, "active")
    [jwk] = [
        key
        for key in (await client.get("/.well-known/jwks.json")).json()["keys"]
        if key["kid"] == row.kid
    ]
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
    async with running_app(app):
        old_kid = (await key_in_role(app, "active")).kid
        old_next = (await key_in_role(app, "next")).kid
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
        new_kek = KeyEncryption(STRONG_KEK).kek_id
        # The next key was sealed under the old KEK; the one published in its place is not.
        for expected_kid in (old_next, None):
            async with UnitOfWork(app_state(replaced).session_factory) as uow:
                key = await rotation.rotate_signing_key(
                    uow.session, app_state(replaced).auth, now=utcnow()
                )
            if expected_kid is not None:
                assert key.kid == expected_kid
                assert key.kek_id != new_kek
            assert kid_of((await tokens(client, user["email"]))["access_token"]) == key.kid
            assert (await key_in_role(replaced, "next")).kek_id == new_kek
        # After two rotations the old KEK seals no key that signs or will sign.
        assert key.kek_id == new_kek


def test_the_development_key_encryption_key_refuses_production() -> None:
    with pytest.raises(ValidationError, match="development default"):
        AuthSettings(environment="production")
    with pytest.raises(ValidationError, match="bits of entropy"):
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
    assert defaults.throttle_max_failures_per_account_address == 5
    assert defaults.throttle_window_seconds == 900
    assert defaults.signing_key_bits >= 2048
    # OWASP's argon2id minimum: m = 19 MiB, t = 2, p = 1.
    assert defaults.password_memory_cost_kib >= 19 * 1024
    assert defaults.password_time_cost >= 2
    assert defaults.password_parallelism >= 1
    with pytest.raises(ValidationError):
        AuthSettings(signing_key_bits=1024)


def token_with_kid(kid: str) -> str:
    """A three-segment token whose header names ``kid``; its signature is junk."""
    header = base64url_encode(json.dumps({"alg": "RS256", "typ": "at+jwt", "kid": kid}).encode())
    payload = base64url_encode(json.dumps({"sub": str(uuid.uuid4())}).encode())
    return f"{header.decode()}.{payload.decode()}.{base64url_encode(b'junk').decode()}"


async def test_random_kids_cost_at_most_one_key_reload_per_cooldown_yet_rotated_keys_verify(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    admin = await make_admin(app)
    admin_access = (await tokens(client, admin))["access_token"]
    user = await register(client)
    verifier = shared_state(app).verifier
    assert verifier is not None
    jwks = verifier.jwks
    # The admin's token has been verified, so the key set is loaded.
    assert (await client.get("/auth/me", headers=bearer(admin_access))).is_success
    before = jwks.fetch_count
    for _ in range(40):
        revoke = await client.post("/auth/revoke", data={"token": token_with_kid(uuid.uuid4().hex)})
        assert revoke.status_code == 200
    # Anonymous revocations with fresh random kids: one reload, then the cooldown holds.
    assert jwks.fetch_count - before <= 1
    # The same kid again is answered from the negative cache.
    reloads = jwks.fetch_count
    kid = uuid.uuid4().hex
    for _ in range(5):
        await client.post("/auth/revoke", data={"token": token_with_kid(kid)})
    assert jwks.fetch_count == reloads

    # Within that cooldown, two rotations make auth sign with a key created after the key
    # set was loaded: auth announces it to its own verifier, so its tokens verify at once.
    await rotate(client, admin_access)
    new_kid = await rotate(client, admin_access)
    assert not jwks.has(new_kid)
    fresh = await tokens(client, user["email"])
    assert kid_of(fresh["access_token"]) == new_kid
    assert (await client.get("/auth/me", headers=bearer(fresh["access_token"]))).is_success
