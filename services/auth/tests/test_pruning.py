"""Auth prunes refresh tokens, families, throttle entries and outbox rows past their
retention, without weakening refresh-token reuse detection or live sessions."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from pydantic import ValidationError

from momentum_auth import cli
from momentum_auth.app import create_app
from momentum_auth.models import OUTBOX, AuthBase
from momentum_auth.pruning import pruner
from momentum_auth.settings import AuthSettings
from momentum_auth.state import app_state
from momentum_devtools.testing.apps import running_app
from momentum_shared.events import utcnow
from momentum_shared.pruning import PruneResult
from services.auth.tests.conftest import make_settings
from services.auth.tests.support import bearer, refresh, register, tokens

TOKENS = AuthBase.metadata.tables["refresh_tokens"]
FAMILIES = AuthBase.metadata.tables["refresh_token_families"]
RETENTION = timedelta(days=7)


def settings_for(database_url: str) -> AuthSettings:
    return make_settings(
        database_url, refresh_token_retention_seconds=int(RETENTION.total_seconds())
    )


async def prune(app: FastAPI, *, at: datetime) -> PruneResult:
    state = app_state(app)
    return await pruner(state.session_factory, state.settings).prune(now=at)


async def session_rows(app: FastAPI, user_id: str) -> tuple[int, int]:
    """(families, refresh tokens) of the user still stored."""
    owned = sa.select(FAMILIES.c.id).where(FAMILIES.c.user_id == uuid.UUID(user_id))
    async with app_state(app).engine.connect() as connection:
        families = (
            await connection.execute(sa.select(sa.func.count()).select_from(owned.subquery()))
        ).scalar_one()
        tokens_left = (
            await connection.execute(
                sa.select(sa.func.count()).select_from(TOKENS).where(TOKENS.c.family_id.in_(owned))
            )
        ).scalar_one()
    return int(families), int(tokens_left)


async def test_a_spent_refresh_token_is_kept_while_it_lives_so_its_reuse_still_revokes(
    database_url: str,
) -> None:
    app = create_app(settings_for(database_url))
    async with running_app(app) as client:
        user = await register(client)
        first = await tokens(client, user["email"])
        renewed = await refresh(client, first["refresh_token"])
        assert renewed.status_code == 200
        # A week on: the spent token has not expired (30 days idle), so it is kept.
        await prune(app, at=utcnow() + RETENTION + timedelta(days=1))
        assert await session_rows(app, user["id"]) == (1, 2)
        replay = await refresh(client, first["refresh_token"])
        assert replay.status_code == 401
        # Reuse detection still fired: the whole family is revoked, the newest token too.
        newest = await refresh(client, renewed.json()["refresh_token"])
        assert newest.status_code == 401


async def test_expired_tokens_and_their_family_go_after_the_retention(database_url: str) -> None:
    app = create_app(settings_for(database_url))
    async with running_app(app) as client:
        user = await register(client)
        first = await tokens(client, user["email"])
        assert (await refresh(client, first["refresh_token"])).status_code == 200
        settings = app_state(app).settings
        start = utcnow()
        idle = start + timedelta(seconds=settings.refresh_idle_lifetime_seconds)
        # Expired, but not yet for the whole retention: kept.
        await prune(app, at=idle + RETENTION - timedelta(hours=1))
        assert await session_rows(app, user["id"]) == (1, 2)
        result = await prune(app, at=idle + RETENTION + timedelta(hours=1))
        assert result.deleted["refresh_tokens"] == 2
        # The family itself lives until its absolute expiry (a sign-in's 90 days).
        assert result.deleted["refresh_token_families"] == 0
        assert await session_rows(app, user["id"]) == (1, 0)
        absolute = start + timedelta(seconds=settings.refresh_absolute_lifetime_seconds)
        result = await prune(app, at=absolute + RETENTION + timedelta(hours=1))
        assert result.deleted["refresh_token_families"] == 1
        assert await session_rows(app, user["id"]) == (0, 0)
        # A pruned token is refused as any unknown token is.
        assert (await refresh(client, first["refresh_token"])).status_code == 401


async def test_a_revoked_family_goes_once_its_last_access_token_has_expired(
    database_url: str,
) -> None:
    app = create_app(make_settings(database_url, refresh_token_retention_seconds=60))
    async with running_app(app) as client:
        user = await register(client)
        pair = await tokens(client, user["email"])
        assert (await client.post("/auth/revoke", data={"token": pair["refresh_token"]})).is_success
        revoked_at = utcnow()
        # A minute later its refresh token goes, but the family stays while its access
        # token could still be presented (auth answers "revoked" from it).
        result = await prune(app, at=revoked_at + timedelta(seconds=120))
        assert result.deleted["refresh_tokens"] == 1
        assert await session_rows(app, user["id"]) == (1, 0)
        me = await client.get("/auth/me", headers=bearer(pair["access_token"]))
        assert me.status_code == 401
        lifetime = timedelta(seconds=app_state(app).settings.access_token_lifetime_seconds)
        result = await prune(app, at=revoked_at + lifetime + timedelta(seconds=120))
        assert result.deleted["refresh_token_families"] == 1
        assert await session_rows(app, user["id"]) == (0, 0)
        assert (await refresh(client, pair["refresh_token"])).status_code == 401


async def test_a_live_session_survives_every_prune(database_url: str) -> None:
    app = create_app(settings_for(database_url))
    async with running_app(app) as client:
        user = await register(client)
        pair = await tokens(client, user["email"])
        result = await prune(app, at=utcnow() + RETENTION + timedelta(days=1))
        assert result.deleted["refresh_token_families"] == 0
        assert await session_rows(app, user["id"]) == (1, 1)
        assert (await client.get("/auth/me", headers=bearer(pair["access_token"]))).is_success
        assert (await refresh(client, pair["refresh_token"])).status_code == 200


async def test_published_outbox_rows_past_their_retention_are_pruned(database_url: str) -> None:
    app = create_app(settings_for(database_url))
    async with running_app(app) as client:
        await register(client)
        now = utcnow()
        async with app_state(app).engine.begin() as connection:
            await connection.execute(sa.update(OUTBOX).values(published_at=now))
            total = (
                await connection.execute(sa.select(sa.func.count()).select_from(OUTBOX))
            ).scalar_one()
        assert total > 0
        assert (await prune(app, at=now + timedelta(days=6))).deleted["outbox"] == 0
        assert (await prune(app, at=now + timedelta(days=8))).deleted["outbox"] == total


def test_a_refresh_retention_shorter_than_the_token_leeway_is_refused(database_url: str) -> None:
    with pytest.raises(ValidationError, match="token_leeway_seconds"):
        make_settings(database_url, refresh_token_retention_seconds=60, token_leeway_seconds=120)


async def test_the_prune_command_prunes_once_and_says_what_went(
    database_url: str,
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MOMENTUM_AUTH_DATABASE_URL", database_url)
    monkeypatch.setenv("MOMENTUM_AUTH_ENVIRONMENT", "test")
    await register(client)
    # The command runs its own event loop: off this test's loop.
    assert await asyncio.to_thread(cli.main, ["prune"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["skipped"] is False
    assert document["complete"] is True
    assert set(document["deleted"]) == {
        "throttle_entries",
        "usual_addresses",
        "refresh_tokens",
        "refresh_token_families",
        "outbox",
    }
