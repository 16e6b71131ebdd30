"""Builders for auth test data: users, sign-ins, decoded tokens, outbox events."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import jwt
import sqlalchemy as sa
from fastapi import FastAPI

from momentum_auth.models import OUTBOX
from momentum_auth.state import app_state
from momentum_shared.events import CloudEvent

PASSWORD = "correct horse battery"


def new_email() -> str:
    return f"user-{uuid.uuid4().hex[:12]}@example.com"


async def register(
    client: httpx.AsyncClient,
    email: str | None = None,
    *,
    password: str = PASSWORD,
    **fields: Any,
) -> dict[str, Any]:
    response = await client.post(
        "/auth/register", json={"email": email or new_email(), "password": password, **fields}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def sign_in(
    client: httpx.AsyncClient,
    email: str,
    *,
    password: str = PASSWORD,
    scope: str | None = None,
) -> httpx.Response:
    form = {"grant_type": "password", "username": email, "password": password}
    if scope is not None:
        form["scope"] = scope
    return await client.post("/auth/token", data=form)


async def tokens(
    client: httpx.AsyncClient, email: str, *, password: str = PASSWORD, scope: str | None = None
) -> dict[str, Any]:
    response = await sign_in(client, email, password=password, scope=scope)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def refresh(
    client: httpx.AsyncClient, refresh_token: str, *, scope: str | None = None
) -> httpx.Response:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    if scope is not None:
        form["scope"] = scope
    return await client.post("/auth/token", data=form)


def bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


async def decode(client: httpx.AsyncClient, access_token: str, *, issuer: str) -> dict[str, Any]:
    """Verify a token against the published JWKS the way any outside party would."""
    jwks = (await client.get("/.well-known/jwks.json")).json()
    kid = jwt.get_unverified_header(access_token)["kid"]
    key = jwt.PyJWKSet.from_dict(jwks)[kid]
    claims: dict[str, Any] = jwt.decode(
        access_token, key=key, algorithms=["RS256"], audience="momentum-api", issuer=issuer
    )
    return claims


async def outbox(app: FastAPI, event_type: str | None = None) -> list[CloudEvent]:
    """The events written to the outbox, oldest first."""
    query = sa.select(OUTBOX.c.payload).order_by(OUTBOX.c.created_at, OUTBOX.c.id)
    async with app_state(app).engine.connect() as connection:
        payloads = (await connection.execute(query)).scalars().all()
    events = [CloudEvent.from_json(payload) for payload in payloads]
    return [event for event in events if event_type is None or event.type == event_type]


async def make_admin(app: FastAPI, email: str | None = None) -> str:
    """An admin user created the way the operator command does; returns the email."""
    from momentum_auth import accounts
    from momentum_auth.schemas import UserCreate
    from momentum_shared.db import UnitOfWork
    from momentum_shared.events import utcnow

    address = email or new_email()
    async with UnitOfWork(app_state(app).session_factory) as uow:
        await accounts.create_admin(
            uow.session,
            app_state(app).auth,
            UserCreate(email=address, password=PASSWORD),
            now=utcnow(),
        )
    return address


def kid_of(access_token: str) -> str:
    kid: str = jwt.get_unverified_header(access_token)["kid"]
    return kid
