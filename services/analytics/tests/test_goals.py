"""Goals and the user's timezone (docs/spec/analytics.md §1 and §6), through JetStream events."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from momentum_devtools.testing.issuer import TestIssuer
from services.analytics.tests.conftest import Feed
from services.analytics.tests.support import FixedClock, at, completed, registered, updated

READ_WRITE = "analytics:read analytics:write"


async def goals(client: httpx.AsyncClient, issuer: TestIssuer, user: uuid.UUID) -> dict[str, Any]:
    response = await client.get("/analytics/goals", headers=issuer.bearer(user, tz="UTC"))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def put_goals(
    client: httpx.AsyncClient, issuer: TestIssuer, user: uuid.UUID, **body: int | None
) -> dict[str, Any]:
    response = await client.put(
        "/analytics/goals", json=body, headers=issuer.bearer(user, tz="UTC", scope=READ_WRITE)
    )
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def done(user: uuid.UUID, when: str, count: int = 1) -> list[Any]:
    return [completed(user, at(when), uuid.uuid4(), usertz="UTC") for _ in range(count)]


async def test_today_follows_the_timezone_analytics_knows_not_the_token(
    client: httpx.AsyncClient, issuer: TestIssuer, clock: FixedClock, feed: Feed
) -> None:
    user = uuid.uuid4()
    clock.now = at("2026-11-26T20:00:00Z")  # already the 27th in Kiritimati (UTC+14)
    old_token = issuer.bearer(user, tz="Europe/Berlin")
    before = (await client.get("/analytics/streaks", headers=old_token)).json()
    assert (before["timezone"], before["today"]) == ("Europe/Berlin", "2026-11-26")

    await feed([registered(user, at("2026-11-01T00:00:00Z"), "Pacific/Kiritimati", usertz=None)])
    after = (await client.get("/analytics/streaks", headers=old_token)).json()
    assert (after["timezone"], after["today"]) == ("Pacific/Kiritimati", "2026-11-27")

    await feed([updated(user, at("2026-11-20T00:00:00Z"), "America/New_York", usertz=None)])
    report = (await client.get("/analytics/reports/weekly", headers=old_token)).json()
    assert report["timezone"] == "America/New_York"
    assert report["start_date"] == "2026-11-23"


async def test_an_older_timezone_arriving_late_does_not_replace_the_newer_one(
    client: httpx.AsyncClient, issuer: TestIssuer, feed: Feed
) -> None:
    user = uuid.uuid4()
    await feed([updated(user, at("2026-11-20T00:00:00Z"), "Asia/Tokyo", usertz=None)])
    await feed([registered(user, at("2026-11-01T00:00:00Z"), "Europe/Berlin", usertz=None)])
    body = (await client.get("/analytics/streaks", headers=issuer.bearer(user, tz="UTC"))).json()
    assert body["timezone"] == "Asia/Tokyo"


async def test_setting_goals_needs_the_analytics_write_scope(
    client: httpx.AsyncClient, issuer: TestIssuer
) -> None:
    user = uuid.uuid4()
    response = await client.put(
        "/analytics/goals",
        json={"daily_tasks": 3},
        headers=issuer.bearer(user, scope="analytics:read"),
    )
    assert response.status_code == 403
    assert 'scope="analytics:write"' in response.headers["www-authenticate"]
    response = await client.get(
        "/analytics/goals", headers=issuer.bearer(user, scope="analytics:write")
    )
    assert response.status_code == 403
    assert 'scope="analytics:read"' in response.headers["www-authenticate"]


@pytest.mark.parametrize(
    "body",
    [
        {"daily_tasks": 0},
        {"daily_tasks": 101},
        {"weekly_tasks": 0},
        {"weekly_tasks": 1001},
        {"daily_tasks": -1, "weekly_tasks": 5},
        {"daily_tasks": 2.5},
        {"daily_tasks": 3, "monthly_tasks": 9},
    ],
)
async def test_goals_out_of_range_are_422_problems(
    client: httpx.AsyncClient, issuer: TestIssuer, body: dict[str, Any]
) -> None:
    user = uuid.uuid4()
    response = await client.put(
        "/analytics/goals", json=body, headers=issuer.bearer(user, scope=READ_WRITE)
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"]
    assert (await goals(client, issuer, user))["daily_tasks"] is None


async def test_goals_at_the_edges_of_their_range_are_kept(
    client: httpx.AsyncClient, issuer: TestIssuer
) -> None:
    user = uuid.uuid4()
    body = await put_goals(client, issuer, user, daily_tasks=100, weekly_tasks=1)
    assert (body["daily_tasks"], body["weekly_tasks"]) == (100, 1)
    body = await put_goals(client, issuer, user, daily_tasks=1, weekly_tasks=1000)
    assert (await goals(client, issuer, user))["weekly_tasks"] == 1000


async def test_a_user_without_goals_has_streaks_of_zero(
    client: httpx.AsyncClient, issuer: TestIssuer, feed: Feed, clock: FixedClock
) -> None:
    user = uuid.uuid4()
    clock.now = at("2026-11-26T12:00:00Z")
    await feed(done(user, "2026-11-26T09:00:00Z", 5))
    assert await goals(client, issuer, user) == {
        "daily_tasks": None,
        "weekly_tasks": None,
        "daily_goal": {"current": 0, "longest": 0, "met_today": False},
        "weekly_goal": {"current": 0, "longest": 0, "met_this_week": False},
    }


async def test_a_daily_goal_applies_from_the_day_it_is_set_and_earlier_days_keep_theirs(
    client: httpx.AsyncClient, issuer: TestIssuer, feed: Feed, clock: FixedClock
) -> None:
    user = uuid.uuid4()
    clock.now = at("2026-11-23T08:00:00Z")  # Monday
    await feed(done(user, "2026-11-22T10:00:00Z", 3))  # Sunday, before any goal
    body = await put_goals(client, issuer, user, daily_tasks=2)
    assert body["daily_goal"] == {"current": 0, "longest": 0, "met_today": False}
    await feed(done(user, "2026-11-23T10:00:00Z", 2))
    assert (await goals(client, issuer, user))["daily_goal"] == {
        "current": 1,
        "longest": 1,
        "met_today": True,
    }

    clock.now = at("2026-11-24T08:00:00Z")  # Tuesday: one completion misses a goal of 2
    await feed(done(user, "2026-11-24T09:00:00Z"))
    assert (await goals(client, issuer, user))["daily_goal"] == {
        "current": 1,
        "longest": 1,
        "met_today": False,
    }
    body = await put_goals(client, issuer, user, daily_tasks=1)  # from Tuesday on
    assert body["daily_goal"] == {"current": 2, "longest": 2, "met_today": True}

    clock.now = at("2026-11-25T08:00:00Z")  # Wednesday: a goal of 3 leaves Monday's alone
    await put_goals(client, issuer, user, daily_tasks=3)
    await feed(done(user, "2026-11-25T09:00:00Z", 2))
    assert (await goals(client, issuer, user)) == {
        "daily_tasks": 3,
        "weekly_tasks": None,
        "daily_goal": {"current": 2, "longest": 2, "met_today": False},
        "weekly_goal": {"current": 0, "longest": 0, "met_this_week": False},
    }
    await feed(done(user, "2026-11-25T11:00:00Z"))
    assert (await goals(client, issuer, user))["daily_goal"] == {
        "current": 3,
        "longest": 3,
        "met_today": True,
    }

    body = await put_goals(client, issuer, user, daily_tasks=None)
    assert body["daily_tasks"] is None
    assert body["daily_goal"] == {"current": 0, "longest": 0, "met_today": False}


async def test_a_late_completion_mends_a_broken_daily_goal_streak(
    client: httpx.AsyncClient, issuer: TestIssuer, feed: Feed, clock: FixedClock
) -> None:
    user = uuid.uuid4()
    clock.now = at("2026-11-16T08:00:00Z")
    await put_goals(client, issuer, user, daily_tasks=1)
    clock.now = at("2026-11-20T12:00:00Z")  # Friday
    await feed(
        done(user, "2026-11-16T09:00:00Z")
        + done(user, "2026-11-18T09:00:00Z")
        + done(user, "2026-11-19T09:00:00Z")
    )
    assert (await goals(client, issuer, user))["daily_goal"] == {
        "current": 2,
        "longest": 2,
        "met_today": False,
    }
    await feed(done(user, "2026-11-17T21:00:00Z"))  # last Tuesday's, delivered now
    assert (await goals(client, issuer, user))["daily_goal"] == {
        "current": 4,
        "longest": 4,
        "met_today": False,
    }


async def test_weekly_goal_streaks_count_met_weeks_and_the_running_week_once_met(
    client: httpx.AsyncClient, issuer: TestIssuer, feed: Feed, clock: FixedClock
) -> None:
    user = uuid.uuid4()
    clock.now = at("2026-11-09T08:00:00Z")  # Monday of 2026-W46
    await put_goals(client, issuer, user, weekly_tasks=3)
    await feed(
        done(user, "2026-11-10T09:00:00Z", 2)  # W46: 2 of 3
        + done(user, "2026-11-17T09:00:00Z", 1)  # W47: 3 of 3
        + done(user, "2026-11-22T09:00:00Z", 2)
    )
    clock.now = at("2026-11-25T12:00:00Z")  # W48, nothing yet
    assert (await goals(client, issuer, user))["weekly_goal"] == {
        "current": 1,
        "longest": 1,
        "met_this_week": False,
    }
    await feed(done(user, "2026-11-15T23:00:00Z"))  # a late one for W46's Sunday
    assert (await goals(client, issuer, user))["weekly_goal"] == {
        "current": 2,
        "longest": 2,
        "met_this_week": False,
    }
    await feed(done(user, "2026-11-24T09:00:00Z", 3))
    assert (await goals(client, issuer, user))["weekly_goal"] == {
        "current": 3,
        "longest": 3,
        "met_this_week": True,
    }
    # Raising the goal today judges the running week by it, not the weeks before.
    body = await put_goals(client, issuer, user, weekly_tasks=4)
    assert body["weekly_goal"] == {"current": 2, "longest": 2, "met_this_week": False}


async def test_goals_are_the_callers_own(client: httpx.AsyncClient, issuer: TestIssuer) -> None:
    me, other = uuid.uuid4(), uuid.uuid4()
    await put_goals(client, issuer, me, daily_tasks=4, weekly_tasks=20)
    assert (await goals(client, issuer, other))["daily_tasks"] is None
    assert (await goals(client, issuer, me))["weekly_tasks"] == 20


async def test_a_past_week_is_judged_by_the_weekly_goal_in_effect_on_its_sunday(
    client: httpx.AsyncClient, issuer: TestIssuer, feed: Feed, clock: FixedClock
) -> None:
    user = uuid.uuid4()
    clock.now = at("2026-11-09T08:00:00Z")  # Monday of 2026-W46
    await put_goals(client, issuer, user, weekly_tasks=5)
    await feed(done(user, "2026-11-10T09:00:00Z", 3))
    clock.now = at("2026-11-12T08:00:00Z")  # Thursday: lowered for the rest of the week
    assert (await put_goals(client, issuer, user, weekly_tasks=3))["weekly_goal"] == {
        "current": 1,
        "longest": 1,
        "met_this_week": True,
    }
    clock.now = at("2026-11-18T08:00:00Z")  # W47, nothing done yet
    assert (await goals(client, issuer, user))["weekly_goal"] == {
        "current": 1,
        "longest": 1,
        "met_this_week": False,
    }
    clock.now = at("2026-11-30T08:00:00Z")  # W49: W47 and W48 were missed
    assert (await goals(client, issuer, user))["weekly_goal"] == {
        "current": 0,
        "longest": 1,
        "met_this_week": False,
    }
