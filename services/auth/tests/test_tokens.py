"""The token endpoint (password and refresh_token grants) and revocation (RFC 6749, 7009)."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta

import httpx
import jwt
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlmodel import select

from momentum_auth import grants
from momentum_auth.models import RefreshToken
from momentum_auth.schemas import TokenResponse
from momentum_auth.settings import AuthSettings
from momentum_auth.state import app_state
from momentum_shared.db import UnitOfWork
from momentum_shared.events import utcnow
from services.auth.tests.support import (
    PASSWORD,
    bearer,
    decode,
    new_email,
    outbox,
    refresh,
    register,
    sign_in,
    tokens,
)

USER_SCOPES = "profile tasks:read tasks:write analytics:read analytics:write"


async def replays(client: httpx.AsyncClient) -> float:
    """The replay counter as /metrics shows it."""
    for line in (await client.get("/metrics")).text.splitlines():
        if line.startswith("momentum_auth_refresh_token_replays_total "):
            return float(line.split()[1])
    raise AssertionError("no replay counter in /metrics")


async def test_password_grant_issues_a_token_pair(client: httpx.AsyncClient, app: FastAPI) -> None:
    user = await register(client)
    response = await sign_in(client, user["email"])
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "scope"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert body["scope"] == USER_SCOPES
    # At least 256 bits: 32 bytes are 43 base64url characters.
    assert len(body["refresh_token"]) >= 43
    logged_in = await outbox(app, "auth.user.logged_in")
    assert [event.data for event in logged_in] == [{"user_id": user["id"], "method": "password"}]
    assert logged_in[0].usertz == "UTC"
    assert logged_in[0].subject == user["id"]
    assert logged_in[0].source == "/momentum/auth"


async def test_access_token_header_and_claims(
    client: httpx.AsyncClient, settings: AuthSettings
) -> None:
    user = await register(client, timezone="America/New_York")
    before = int(time.time())
    body = await tokens(client, user["email"])
    header = jwt.get_unverified_header(body["access_token"])
    assert header["alg"] == "RS256"
    assert header["typ"] == "at+jwt"
    jwks = (await client.get("/.well-known/jwks.json")).json()
    assert header["kid"] in {key["kid"] for key in jwks["keys"]}

    claims = await decode(client, body["access_token"], issuer=settings.issuer)
    assert set(claims) >= {
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "jti",
        "client_id",
        "scope",
        "sid",
        "tz",
    }
    assert claims["iss"] == "https://momentum.test"
    assert claims["sub"] == user["id"]
    assert claims["aud"] == "momentum-api"
    assert claims["exp"] - claims["iat"] == 900
    assert before <= claims["iat"] <= int(time.time())
    uuid.UUID(claims["jti"])
    uuid.UUID(claims["sid"])
    assert claims["client_id"] == "momentum"
    assert claims["scope"] == USER_SCOPES
    assert claims["tz"] == "America/New_York"


async def test_each_token_has_its_own_jti_and_sign_ins_their_own_sid(
    client: httpx.AsyncClient, settings: AuthSettings
) -> None:
    user = await register(client)
    first = await tokens(client, user["email"])
    second = await tokens(client, user["email"])
    renewed = (await refresh(client, first["refresh_token"])).json()
    claims = [
        await decode(client, body["access_token"], issuer=settings.issuer)
        for body in (first, second, renewed)
    ]
    assert len({c["jti"] for c in claims}) == 3
    assert claims[0]["sid"] != claims[1]["sid"]
    assert claims[0]["sid"] == claims[2]["sid"]


async def test_client_id_is_carried_into_the_token(
    client: httpx.AsyncClient, settings: AuthSettings
) -> None:
    user = await register(client)
    response = await client.post(
        "/auth/token",
        data={
            "grant_type": "password",
            "username": user["email"],
            "password": PASSWORD,
            "client_id": "momentum-cli",
        },
    )
    claims = await decode(client, response.json()["access_token"], issuer=settings.issuer)
    assert claims["client_id"] == "momentum-cli"
    bad = await client.post(
        "/auth/token",
        data={
            "grant_type": "password",
            "username": user["email"],
            "password": PASSWORD,
            "client_id": "has spaces",
        },
    )
    assert bad.status_code == 400
    assert bad.json()["error"] == "invalid_request"


async def test_scope_narrowing(client: httpx.AsyncClient, settings: AuthSettings) -> None:
    user = await register(client)
    narrowed = await tokens(client, user["email"], scope="tasks:write tasks:read")
    assert narrowed["scope"] == "tasks:read tasks:write"
    claims = await decode(client, narrowed["access_token"], issuer=settings.issuer)
    assert claims["scope"] == "tasks:read tasks:write"

    for scope in ("admin", "profile admin", "tasks:delete"):
        response = await sign_in(client, user["email"], scope=scope)
        assert response.status_code == 400, scope
        assert response.json()["error"] == "invalid_scope"
        assert response.headers["cache-control"] == "no-store"


async def test_wrong_password_and_unknown_email_look_the_same(
    client: httpx.AsyncClient,
) -> None:
    user = await register(client)
    wrong = await sign_in(client, user["email"], password="not the password")
    unknown = await sign_in(client, new_email())
    malformed = await sign_in(client, "not an email at all")
    for response in (wrong, unknown, malformed):
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["error"] == "invalid_grant"
    assert wrong.json() == unknown.json() == malformed.json()
    assert wrong.headers["www-authenticate"] == unknown.headers["www-authenticate"]


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({}, "invalid_request"),
        ({"grant_type": "password", "username": "a@example.com"}, "invalid_request"),
        ({"grant_type": "password", "password": "x"}, "invalid_request"),
        ({"grant_type": "refresh_token"}, "invalid_request"),
        ({"grant_type": "client_credentials"}, "unsupported_grant_type"),
        ({"grant_type": "authorization_code", "code": "x"}, "unsupported_grant_type"),
        (
            {"grant_type": "password", "username": "a@example.com", "password": "x" * 2000},
            "invalid_request",
        ),
    ],
    ids=["empty", "no-password", "no-username", "no-refresh-token", "client-creds", "code", "huge"],
)
async def test_malformed_token_requests(
    client: httpx.AsyncClient, form: dict[str, str], error: str
) -> None:
    response = await client.post("/auth/token", data=form)
    assert response.status_code == 400
    assert response.json()["error"] == error
    assert response.json()["status"] == 400
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("name", ["grant_type", "username", "password", "scope"])
async def test_a_repeated_token_parameter_is_invalid_request(
    client: httpx.AsyncClient, name: str
) -> None:
    email = (await register(client))["email"]
    form: dict[str, str | list[str]] = {
        "grant_type": "password",
        "username": email,
        "password": PASSWORD,
        "scope": "profile",
    }
    form[name] = [str(form[name]), str(form[name])]
    response = await client.post("/auth/token", data=form)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert name in response.json()["detail"]
    assert response.headers["cache-control"] == "no-store"


async def test_a_repeated_revocation_token_is_invalid_request(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    pair = await tokens(client, (await register(client))["email"])
    response = await client.post("/auth/revoke", data={"token": [pair["refresh_token"]] * 2})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert await outbox(app, "auth.session.revoked") == []
    assert (await refresh(client, pair["refresh_token"])).status_code == 200


async def test_json_body_is_not_a_token_request(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/auth/token", json={"grant_type": "password", "username": "a@b.c", "password": "x"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert "x-www-form-urlencoded" in response.json()["detail"]
    revocation = await client.post("/auth/revoke", json={"token": "x"})
    assert revocation.status_code == 400
    assert "x-www-form-urlencoded" in revocation.json()["detail"]
    multipart = await client.post(
        "/auth/token", files={"grant_type": (None, "password"), "username": (None, "a@b.c")}
    )
    assert multipart.status_code == 400
    assert "x-www-form-urlencoded" in multipart.json()["detail"]


@pytest.mark.parametrize("path", ["/auth/token", "/auth/revoke"])
@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (
            "&".join(f"f{i}=x" for i in range(1001)).encode(),
            "application/x-www-form-urlencoded",
        ),
        (b"abc", "multipart/form-data"),
    ],
    ids=["too-many-fields", "multipart-without-boundary"],
)
async def test_an_unparsable_form_is_invalid_request(
    client: httpx.AsyncClient, path: str, body: bytes, content_type: str
) -> None:
    response = await client.post(path, content=body, headers={"content-type": content_type})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["error"] == "invalid_request"
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("path", "name"), [("/auth/token", "grant_type"), ("/auth/revoke", "token")]
)
async def test_a_file_for_a_parameter_is_invalid_request(
    client: httpx.AsyncClient, path: str, name: str
) -> None:
    response = await client.post(path, files={name: ("a.txt", b"password")})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert response.headers["cache-control"] == "no-store"


async def test_refresh_rotates_the_pair(
    client: httpx.AsyncClient, app: FastAPI, settings: AuthSettings
) -> None:
    user = await register(client)
    first = await tokens(client, user["email"])
    response = await refresh(client, first["refresh_token"])
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["scope"] == USER_SCOPES
    assert (await client.get("/auth/me", headers=bearer(second["access_token"]))).is_success
    # Rotated again from the new one: the chain goes on.
    assert (await refresh(client, second["refresh_token"])).status_code == 200
    methods = [event.data["method"] for event in await outbox(app, "auth.user.logged_in")]
    assert methods == ["password", "refresh", "refresh"]


async def test_refresh_can_narrow_but_not_widen(
    client: httpx.AsyncClient, settings: AuthSettings
) -> None:
    user = await register(client)
    first = await tokens(client, user["email"], scope="profile tasks:read")
    widened = await refresh(client, first["refresh_token"], scope="tasks:write")
    assert widened.status_code == 400
    assert widened.json()["error"] == "invalid_scope"
    # A refused widening does not spend the token.
    narrowed = await refresh(client, first["refresh_token"], scope="tasks:read")
    assert narrowed.status_code == 200
    assert narrowed.json()["scope"] == "tasks:read"
    # The family keeps its original grant for the next refresh.
    again = await refresh(client, narrowed.json()["refresh_token"])
    assert again.json()["scope"] == "profile tasks:read"


async def test_refresh_replay_revokes_the_whole_family(
    client: httpx.AsyncClient, app: FastAPI, settings: AuthSettings
) -> None:
    user = await register(client)
    first = await tokens(client, user["email"])
    second = (await refresh(client, first["refresh_token"])).json()
    replays_before = await replays(client)

    replay = await refresh(client, first["refresh_token"])
    assert replay.status_code == 401
    assert replay.json()["error"] == "invalid_grant"
    assert replay.headers["cache-control"] == "no-store"
    # The thief's newest token is dead too, and so is the family's access token at auth.
    newest = await refresh(client, second["refresh_token"])
    assert newest.status_code == 401
    assert newest.json()["error"] == "invalid_grant"
    me = await client.get("/auth/me", headers=bearer(second["access_token"]))
    assert me.status_code == 401

    revoked = await outbox(app, "auth.session.revoked")
    assert len(revoked) == 1
    claims = await decode(client, second["access_token"], issuer=settings.issuer)
    assert revoked[0].data["session_id"] == claims["sid"]
    assert revoked[0].data["user_id"] == user["id"]
    # expires_at: when the family's last access token expires.
    last_exp = revoked[0].data["expires_at"]
    assert last_exp.endswith("Z")
    assert last_exp.startswith(time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(claims["exp"])))
    assert revoked[0].usertz == "UTC"

    assert await replays(client) == replays_before + 1

    # Other sign-ins of the same user are untouched.
    other = await tokens(client, user["email"])
    assert (await refresh(client, other["refresh_token"])).status_code == 200


async def test_a_revocation_lasts_until_the_latest_access_token_of_the_session_expires(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    # Ten minutes between sign-in and refresh (the rules take ``now``): the gateway must
    # refuse the session until the refreshed token expires, not the first one.
    user = await register(client)
    signed_in_at = utcnow()
    refreshed_at = signed_in_at + timedelta(seconds=600)
    async with UnitOfWork(app_state(app).session_factory) as uow:
        first = await grants.password_grant(
            uow.session,
            app_state(app).auth,
            username=user["email"],
            password=PASSWORD,
            scope=None,
            client_id="momentum",
            address="203.0.113.7",
            now=signed_in_at,
        )
    assert isinstance(first, TokenResponse)
    async with UnitOfWork(app_state(app).session_factory) as uow:
        second = await grants.refresh_grant(
            uow.session,
            app_state(app).auth,
            refresh_token=first.refresh_token,
            scope=None,
            now=refreshed_at,
        )
    assert isinstance(second, TokenResponse)
    assert (await client.post("/auth/revoke", data={"token": second.refresh_token})).is_success
    [revoked] = await outbox(app, "auth.session.revoked")
    latest_exp = jwt.decode(second.access_token, options={"verify_signature": False})["exp"]
    announced = datetime.fromisoformat(revoked.data["expires_at"].replace("Z", "+00:00"))
    assert announced.timestamp() == latest_exp
    assert latest_exp == int(refreshed_at.timestamp()) + 900


async def test_a_sign_in_writes_its_session_row_once(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    user = await register(client)
    statements: list[str] = []

    def record(*args: object) -> None:
        statements.append(str(args[2]))

    engine = app_state(app).engine.sync_engine
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        assert (await sign_in(client, user["email"])).status_code == 200
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    family_writes = [s for s in statements if "refresh_token_families" in s.split("(")[0]]
    assert len(family_writes) == 1, family_writes
    assert family_writes[0].startswith("INSERT")


async def test_unknown_and_expired_refresh_tokens(client: httpx.AsyncClient, app: FastAPI) -> None:
    unknown = await refresh(client, "x" * 43)
    assert unknown.status_code == 401
    assert unknown.json()["error"] == "invalid_grant"

    user = await register(client)
    pair = await tokens(client, user["email"])
    async with app_state(app).session_factory() as session, session.begin():
        await session.exec(
            sa.update(RefreshToken).values(expires_at=utcnow() - timedelta(seconds=1))
        )
    expired = await refresh(client, pair["refresh_token"])
    assert expired.status_code == 401
    assert expired.json()["error"] == "invalid_grant"


async def test_refresh_expiry_follows_the_idle_and_absolute_lifetimes(
    database_url: str,
) -> None:
    from momentum_auth.app import create_app
    from momentum_devtools.testing.apps import running_app
    from services.auth.tests.conftest import make_settings

    settings = make_settings(
        database_url, refresh_idle_lifetime_seconds=600, refresh_absolute_lifetime_seconds=900
    )
    app = create_app(settings)
    async with running_app(app) as client:
        user = await register(client)
        pair = await tokens(client, user["email"])
        async with app_state(app).session_factory() as session:
            row = (await session.exec(select(RefreshToken))).one()
        lifetime = (row.expires_at - row.created_at).total_seconds()
        assert lifetime == pytest.approx(600)
        # Near the family's end, a rotated token may not outlive it.
        from momentum_auth.models import RefreshTokenFamily

        async with app_state(app).session_factory() as session, session.begin():
            await session.exec(
                sa.update(RefreshTokenFamily).values(expires_at=utcnow() + timedelta(seconds=100))
            )
        renewed = (await refresh(client, pair["refresh_token"])).json()
        async with app_state(app).session_factory() as session:
            rows = (await session.exec(select(RefreshToken))).all()
        newest = max(rows, key=lambda r: r.created_at)
        assert (newest.expires_at - utcnow()).total_seconds() <= 100
        assert renewed["refresh_token"]


async def test_refresh_tokens_are_stored_only_as_hashes(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    user = await register(client)
    pair = await tokens(client, user["email"])
    async with app_state(app).session_factory() as session:
        rows = (await session.exec(select(RefreshToken))).all()
    assert len(rows) == 1
    assert rows[0].token_hash != pair["refresh_token"]
    assert pair["refresh_token"] not in repr(rows[0].model_dump())


async def test_revoke_refresh_token_revokes_the_family(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    user = await register(client)
    pair = await tokens(client, user["email"])
    response = await client.post("/auth/revoke", data={"token": pair["refresh_token"]})
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert (await refresh(client, pair["refresh_token"])).status_code == 401
    assert (await client.get("/auth/me", headers=bearer(pair["access_token"]))).status_code == 401
    # Revoking again is still 200 and announces nothing new.
    again = await client.post(
        "/auth/revoke", data={"token": pair["refresh_token"], "token_type_hint": "refresh_token"}
    )
    assert again.status_code == 200
    assert len(await outbox(app, "auth.session.revoked")) == 1


async def test_revoke_an_access_token_revokes_its_session(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    user = await register(client)
    pair = await tokens(client, user["email"])
    response = await client.post(
        "/auth/revoke", data={"token": pair["access_token"], "token_type_hint": "access_token"}
    )
    assert response.status_code == 200
    assert (await refresh(client, pair["refresh_token"])).status_code == 401
    assert len(await outbox(app, "auth.session.revoked")) == 1


async def test_revoke_always_answers_200(client: httpx.AsyncClient, app: FastAPI) -> None:
    for token in ("unknown-token", "a.b.c", "x" * 10_000):
        response = await client.post("/auth/revoke", data={"token": token})
        assert response.status_code == 200
    assert await outbox(app, "auth.session.revoked") == []
    missing = await client.post("/auth/revoke", data={})
    assert missing.status_code == 400
    assert missing.json()["error"] == "invalid_request"
