"""Registration, the profile routes and password changes (docs/spec/auth.md §3)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from services.auth.tests.support import (
    PASSWORD,
    bearer,
    new_email,
    outbox,
    refresh,
    register,
    sign_in,
    tokens,
)


async def test_register_returns_the_user_without_secrets(client: httpx.AsyncClient) -> None:
    email = new_email()
    response = await client.post(
        "/auth/register",
        json={
            "email": email,
            "password": PASSWORD,
            "display_name": "Ada",
            "timezone": "Europe/Berlin",
        },
    )
    assert response.status_code == 201
    assert response.headers["location"] == "/auth/me"
    body = response.json()
    assert set(body) == {"id", "email", "display_name", "timezone", "created_at"}
    assert body["email"] == email
    assert body["display_name"] == "Ada"
    assert body["timezone"] == "Europe/Berlin"
    assert body["created_at"].endswith("Z")
    assert PASSWORD not in response.text
    assert "argon2" not in response.text


async def test_register_defaults_to_utc(client: httpx.AsyncClient) -> None:
    user = await register(client)
    assert user["timezone"] == "UTC"
    assert user["display_name"] is None


async def test_email_is_case_insensitive_and_unique(client: httpx.AsyncClient) -> None:
    email = new_email()
    await register(client, email)
    response = await client.post(
        "/auth/register", json={"email": email.upper(), "password": PASSWORD}
    )
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    # And the other spelling signs in to the same account.
    assert (await sign_in(client, email.upper())).status_code == 200


@pytest.mark.parametrize(
    "payload",
    [
        {"password": "short"},
        {"password": "x" * 129},
        {"timezone": "Mars/Olympus"},
        {"timezone": "localtime"},
        {"email": "not-an-email"},
        {"display_name": ""},
        {"display_name": "Ada\x00"},
        {"is_admin": True},
    ],
    ids=["short", "long", "unknown-zone", "not-iana", "email", "blank-name", "nul-name", "admin"],
)
async def test_register_validates(client: httpx.AsyncClient, payload: dict[str, object]) -> None:
    body = {"email": new_email(), "password": PASSWORD, **payload}
    response = await client.post("/auth/register", json=body)
    assert response.status_code == 422
    problem = response.json()
    assert problem["status"] == 422
    assert problem["errors"]
    assert "x" * 129 not in response.text


async def test_an_email_too_long_once_case_folded_is_a_422(client: httpx.AsyncClient) -> None:
    # 119 characters, valid, but casefold() turns each U+0390 into three: 343 characters.
    label = "\u0390" * 20
    email = "\u0390" * 32 + "@" + ".".join([label] * 4) + ".gr"
    response = await client.post("/auth/register", json={"email": email, "password": PASSWORD})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["loc"] == ["body", "email"]


async def test_password_length_bounds_are_inclusive(client: httpx.AsyncClient) -> None:
    await register(client, password="x" * 8)
    await register(client, password="y" * 128)


async def test_me_requires_a_token_with_profile_scope(client: httpx.AsyncClient) -> None:
    user = await register(client)
    anonymous = await client.get("/auth/me")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    garbage = await client.get("/auth/me", headers=bearer("not.a.token"))
    assert garbage.status_code == 401
    assert 'error="invalid_token"' in garbage.headers["www-authenticate"]
    narrow = await tokens(client, user["email"], scope="tasks:read")
    forbidden = await client.get("/auth/me", headers=bearer(narrow["access_token"]))
    assert forbidden.status_code == 403
    assert 'error="insufficient_scope", scope="profile"' in forbidden.headers["www-authenticate"]
    full = await tokens(client, user["email"])
    me = await client.get("/auth/me", headers=bearer(full["access_token"]))
    assert me.status_code == 200
    assert me.json() == user


async def test_me_refuses_a_token_signed_by_another_key(
    client: httpx.AsyncClient, issuer: object
) -> None:
    from momentum_devtools.testing.issuer import TestIssuer

    assert isinstance(issuer, TestIssuer)
    user = await register(client)
    forged = issuer.mint(user["id"], scope="profile", iss="https://momentum.test")
    response = await client.get("/auth/me", headers=bearer(forged))
    assert response.status_code == 401


async def test_patch_me_changes_name_and_timezone(client: httpx.AsyncClient, app: FastAPI) -> None:
    user = await register(client, display_name="Old")
    access = (await tokens(client, user["email"]))["access_token"]
    response = await client.patch(
        "/auth/me",
        json={"display_name": "New", "timezone": "Asia/Tokyo"},
        headers=bearer(access),
    )
    assert response.status_code == 200
    assert response.json()["display_name"] == "New"
    assert response.json()["timezone"] == "Asia/Tokyo"
    again = await client.get("/auth/me", headers=bearer(access))
    assert again.json()["timezone"] == "Asia/Tokyo"
    updated = await outbox(app, "auth.user.updated")
    assert len(updated) == 1
    assert updated[0].usertz == "Asia/Tokyo"
    assert updated[0].data == {"user_id": user["id"], "timezone": "Asia/Tokyo"}
    # New tokens carry the new zone.
    new_access = (await tokens(client, user["email"]))["access_token"]
    assert (await client.get("/auth/me", headers=bearer(new_access))).status_code == 200

    cleared = await client.patch("/auth/me", json={"display_name": None}, headers=bearer(access))
    assert cleared.status_code == 200
    assert cleared.json()["display_name"] is None
    assert cleared.json()["timezone"] == "Asia/Tokyo"


async def test_patch_me_without_changes_emits_nothing(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    user = await register(client, timezone="Europe/Paris")
    access = (await tokens(client, user["email"]))["access_token"]
    response = await client.patch(
        "/auth/me", json={"timezone": "Europe/Paris"}, headers=bearer(access)
    )
    assert response.status_code == 200
    assert await outbox(app, "auth.user.updated") == []


@pytest.mark.parametrize(
    "payload",
    [
        {"timezone": "Nowhere/Special"},
        {"email": "x@example.com"},
        {"display_name": "x" * 101},
        {"display_name": "a\x00b"},
    ],
    ids=["zone", "email", "long-name", "nul-name"],
)
async def test_patch_me_validates(client: httpx.AsyncClient, payload: dict[str, object]) -> None:
    user = await register(client)
    access = (await tokens(client, user["email"]))["access_token"]
    response = await client.patch("/auth/me", json=payload, headers=bearer(access))
    assert response.status_code == 422


async def test_patch_me_requires_profile_scope(client: httpx.AsyncClient) -> None:
    user = await register(client)
    narrow = (await tokens(client, user["email"], scope="tasks:write"))["access_token"]
    response = await client.patch("/auth/me", json={"display_name": "x"}, headers=bearer(narrow))
    assert response.status_code == 403
    assert (await client.patch("/auth/me", json={"display_name": "x"})).status_code == 401


async def test_password_change_revokes_every_other_session(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    user = await register(client)
    current = await tokens(client, user["email"])
    other = await tokens(client, user["email"])
    response = await client.post(
        "/auth/me/password",
        json={"current_password": PASSWORD, "new_password": "a brand new secret"},
        headers=bearer(current["access_token"]),
    )
    assert response.status_code == 204
    assert response.content == b""

    # The other session is gone: its refresh token and its access token both fail.
    assert (await refresh(client, other["refresh_token"])).status_code == 401
    other_me = await client.get("/auth/me", headers=bearer(other["access_token"]))
    assert other_me.status_code == 401
    # The session that changed the password keeps working.
    assert (await client.get("/auth/me", headers=bearer(current["access_token"]))).is_success
    assert (await refresh(client, current["refresh_token"])).status_code == 200

    assert (await sign_in(client, user["email"])).status_code == 401
    assert (await sign_in(client, user["email"], password="a brand new secret")).is_success

    revoked = await outbox(app, "auth.session.revoked")
    assert len(revoked) == 1
    assert revoked[0].data["user_id"] == user["id"]
    assert revoked[0].usertz == "UTC"


async def test_password_change_needs_the_current_password(client: httpx.AsyncClient) -> None:
    user = await register(client)
    access = (await tokens(client, user["email"]))["access_token"]
    wrong = await client.post(
        "/auth/me/password",
        json={"current_password": "not the password", "new_password": "another secret"},
        headers=bearer(access),
    )
    # Refused, but the session is fine: no 401 and no bearer challenge to sign in again.
    assert wrong.status_code == 403
    assert wrong.headers["content-type"] == "application/problem+json"
    assert "www-authenticate" not in wrong.headers
    assert wrong.json()["type"] == "urn:momentum:problem:wrong-password"
    assert wrong.json()["title"] == "the current password is wrong"
    assert (await client.get("/auth/me", headers=bearer(access))).is_success
    short = await client.post(
        "/auth/me/password",
        json={"current_password": PASSWORD, "new_password": "short"},
        headers=bearer(access),
    )
    assert short.status_code == 422
    anonymous = await client.post(
        "/auth/me/password", json={"current_password": PASSWORD, "new_password": "x" * 10}
    )
    assert anonymous.status_code == 401
    narrow = (await tokens(client, user["email"], scope="tasks:read"))["access_token"]
    forbidden = await client.post(
        "/auth/me/password",
        json={"current_password": PASSWORD, "new_password": "x" * 10},
        headers=bearer(narrow),
    )
    assert forbidden.status_code == 403
    # Nothing changed.
    assert (await sign_in(client, user["email"])).status_code == 200
