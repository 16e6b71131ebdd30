"""Analytics routes over JetStream events: DST, week 53, docs/spec/analytics.md rules 1 to 9."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from momentum_devtools.testing.issuer import TestIssuer
from services.analytics.tests.conftest import Feed
from services.analytics.tests.support import (
    FixedClock,
    at,
    completed,
    created,
    logged_in,
    registered,
    updated,
)


async def weekly(
    client: httpx.AsyncClient, issuer: TestIssuer, user: uuid.UUID, week: str | None, tz: str
) -> dict[str, Any]:
    params = {"week": week} if week else {}
    response = await client.get(
        "/analytics/reports/weekly", params=params, headers=issuer.bearer(user, tz=tz)
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def undated_normal(count: int) -> dict[str, Any]:
    """The classified totals of ``count`` completions without a due date, of normal priority."""
    return {
        "completed_on_time": 0,
        "completed_late": 0,
        "completed_undated": count,
        "completed_by_priority": {"low": 0, "normal": count, "high": 0},
    }


def day(report: dict[str, Any], date: str) -> dict[str, Any]:
    found: dict[str, Any] = next(row for row in report["days"] if row["date"] == date)
    return found


async def test_routes_need_a_token_with_the_analytics_scope(
    client: httpx.AsyncClient, issuer: TestIssuer
) -> None:
    assert (await client.get("/analytics/streaks")).status_code == 401
    response = await client.get(
        "/analytics/reports/weekly", headers=issuer.bearer(scope="tasks:read")
    )
    assert response.status_code == 403
    assert 'scope="analytics:read"' in response.headers["www-authenticate"]
    assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    "week",
    [
        "2026-48",
        "2026-W5",
        "2026-W00",
        "2026-W54",
        "2025-W53",
        "26-W48",
        "2026-W4\uff18",
        "0-W1",
        "2026-w48",
        " 2026-W48",
        "2026-W48 ",
        "2026-W48\n",
        "0001-W01",
    ],
)
async def test_malformed_weeks_are_422(
    client: httpx.AsyncClient, issuer: TestIssuer, week: str
) -> None:
    response = await client.get(
        "/analytics/reports/weekly", params={"week": week}, headers=issuer.bearer()
    )
    assert response.status_code == 422
    body = response.json()
    assert body["status"] == 422
    assert body["errors"][0]["loc"] == ["query", "week"]


async def test_a_week_starting_after_today_is_422_and_today_follows_the_token_timezone(
    client: httpx.AsyncClient, issuer: TestIssuer, clock: FixedClock
) -> None:
    # Sunday 2026-11-29 23:30 UTC is already Monday 2026-11-30 on Kiritimati (UTC+14).
    clock.now = datetime(2026, 11, 29, 23, 30, tzinfo=UTC)
    user = uuid.uuid4()
    utc = await weekly(client, issuer, user, None, "UTC")
    assert utc["week"] == "2026-W48"
    assert (utc["start_date"], utc["end_date"]) == ("2026-11-23", "2026-11-29")
    kiritimati = await weekly(client, issuer, user, None, "Pacific/Kiritimati")
    assert kiritimati["week"] == "2026-W49"
    assert kiritimati["timezone"] == "Pacific/Kiritimati"
    future = await client.get(
        "/analytics/reports/weekly",
        params={"week": "2026-W49"},
        headers=issuer.bearer(user, tz="UTC"),
    )
    assert future.status_code == 422
    streaks = await client.get(
        "/analytics/streaks", headers=issuer.bearer(user, tz="Pacific/Pago_Pago")
    )
    assert streaks.json()["today"] == "2026-11-29"
    assert streaks.json()["timezone"] == "Pacific/Pago_Pago"


async def test_an_invalid_tz_claim_means_utc(
    client: httpx.AsyncClient, issuer: TestIssuer, clock: FixedClock
) -> None:
    clock.now = datetime(2026, 11, 29, 23, 30, tzinfo=UTC)
    response = await client.get("/analytics/streaks", headers=issuer.bearer(tz="Mars/Olympus"))
    assert response.status_code == 200
    assert response.json()["timezone"] == "UTC"
    assert response.json()["today"] == "2026-11-29"


async def test_spring_dst_transitions_place_events_on_the_right_local_day(
    client: httpx.AsyncClient, issuer: TestIssuer, clock: FixedClock, feed: Feed
) -> None:
    clock.now = at("2026-04-06T12:00:00Z")
    ny, berlin = uuid.uuid4(), uuid.uuid4()
    task = uuid.uuid4()
    await feed(
        [
            # New York jumps from EST (-5) to EDT (-4) at 2026-03-08 07:00Z.
            logged_in(ny, at("2026-03-08T04:30:00Z"), usertz="America/New_York"),  # 03-07 23:30
            logged_in(ny, at("2026-03-08T06:59:00Z"), usertz="America/New_York"),  # 03-08 01:59
            logged_in(ny, at("2026-03-09T03:59:00Z"), usertz="America/New_York"),  # 03-08 23:59
            logged_in(ny, at("2026-03-09T04:30:00Z"), usertz="America/New_York"),  # 03-09 00:30
            # Berlin jumps from CET (+1) to CEST (+2) at 2026-03-29 01:00Z.
            created(berlin, at("2026-03-28T23:30:00Z"), task, usertz="Europe/Berlin"),  # 03-29
            completed(
                berlin, at("2026-03-29T21:59:00Z"), task, usertz="Europe/Berlin"
            ),  # 03-29 23:59
            completed(
                berlin, at("2026-03-29T22:30:00Z"), task, usertz="Europe/Berlin"
            ),  # 03-30 00:30
        ]
    )
    report = await weekly(client, issuer, ny, "2026-W10", "America/New_York")
    assert (report["start_date"], report["end_date"]) == ("2026-03-02", "2026-03-08")
    assert day(report, "2026-03-07")["logins"] == 1
    assert day(report, "2026-03-08")["logins"] == 2  # a 23-hour day is still one day
    assert report["totals"]["logins"] == 3
    assert report["streaks"]["login"] == {
        "current": 2,
        "longest": 2,
        "last_active_date": "2026-03-08",
    }
    following = await weekly(client, issuer, ny, "2026-W11", "America/New_York")
    assert day(following, "2026-03-09")["logins"] == 1
    assert following["previous_week"] == {"week": "2026-W10", "totals": report["totals"]}
    assert following["streaks"]["login"]["longest"] == 3

    report = await weekly(client, issuer, berlin, "2026-W13", "Europe/Berlin")
    assert day(report, "2026-03-29") == {
        "date": "2026-03-29",
        "logins": 0,
        "tasks_created": 1,
        "tasks_completed": 1,
    }
    assert report["totals"] == {
        "logins": 0,
        "tasks_created": 1,
        "tasks_completed": 1,
        "active_days": 1,
        **undated_normal(1),
    }
    following = await weekly(client, issuer, berlin, "2026-W14", "Europe/Berlin")
    # A re-completion on the next day counts again there (distinct ids per day).
    assert day(following, "2026-03-30")["tasks_completed"] == 1
    assert following["streaks"]["completion"] == {
        "current": 0,
        "longest": 2,
        "last_active_date": "2026-03-30",
    }


async def test_autumn_dst_transitions_place_events_on_the_right_local_day(
    client: httpx.AsyncClient, issuer: TestIssuer, clock: FixedClock, feed: Feed
) -> None:
    clock.now = at("2026-11-03T12:00:00Z")
    ny, berlin = uuid.uuid4(), uuid.uuid4()
    await feed(
        [
            # New York falls back from EDT (-4) to EST (-5) at 2026-11-01 06:00Z.
            logged_in(ny, at("2026-11-01T05:30:00Z"), usertz="America/New_York"),  # 11-01 01:30 EDT
            logged_in(ny, at("2026-11-01T06:30:00Z"), usertz="America/New_York"),  # 11-01 01:30 EST
            logged_in(ny, at("2026-11-02T04:30:00Z"), usertz="America/New_York"),  # 11-01 23:30
            logged_in(
                ny, at("2026-11-02T05:30:00Z"), "refresh", usertz="America/New_York"
            ),  # 11-02 00:30
            # Berlin falls back from CEST (+2) to CET (+1) at 2026-10-25 01:00Z.
            logged_in(berlin, at("2026-10-24T22:30:00Z"), usertz="Europe/Berlin"),  # 10-25 00:30
            logged_in(berlin, at("2026-10-25T22:30:00Z"), usertz="Europe/Berlin"),  # 10-25 23:30
            logged_in(berlin, at("2026-10-25T23:30:00Z"), usertz="Europe/Berlin"),  # 10-26 00:30
        ]
    )
    report = await weekly(client, issuer, ny, "2026-W44", "America/New_York")
    assert day(report, "2026-11-01")["logins"] == 3  # a 25-hour day, the repeated hour included
    following = await weekly(client, issuer, ny, "2026-W45", "America/New_York")
    assert day(following, "2026-11-02")["logins"] == 0  # a refresh is not a password login...
    assert following["totals"]["active_days"] == 1  # ...but it makes an active day
    assert following["streaks"]["login"] == {
        "current": 2,
        "longest": 2,
        "last_active_date": "2026-11-02",
    }
    report = await weekly(client, issuer, berlin, "2026-W43", "Europe/Berlin")
    assert day(report, "2026-10-25")["logins"] == 2
    following = await weekly(client, issuer, berlin, "2026-W44", "Europe/Berlin")
    assert day(following, "2026-10-26")["logins"] == 1


async def test_week_53_and_the_year_boundary(
    client: httpx.AsyncClient, issuer: TestIssuer, clock: FixedClock, feed: Feed
) -> None:
    clock.now = at("2027-01-05T12:00:00Z")
    user = uuid.uuid4()
    tasks = [uuid.uuid4() for _ in range(3)]
    zone = "Pacific/Kiritimati"
    await feed(
        [
            logged_in(user, at("2026-12-27T11:00:00Z"), usertz=zone),  # 12-28 01:00, Monday
            created(user, at("2026-12-30T09:00:00Z"), tasks[0], usertz=zone),  # 12-30 23:00
            completed(user, at("2026-12-31T10:30:00Z"), tasks[0], usertz=zone),  # 2027-01-01 00:30
            logged_in(user, at("2027-01-02T20:00:00Z"), usertz=zone),  # 01-03 10:00, Sunday
            logged_in(user, at("2027-01-03T10:30:00Z"), usertz=zone),  # 01-04 00:30, next week
            created(user, at("2026-12-20T12:00:00Z"), tasks[1], usertz=zone),  # 12-21, W52
            created(user, at("2026-12-20T12:00:00Z"), tasks[2], usertz=zone),
        ]
    )
    report = await weekly(client, issuer, user, "2026-W53", "UTC")
    assert report["user_id"] == str(user)
    assert report["generated_at"] == "2027-01-05T12:00:00Z"
    assert (report["week"], report["start_date"], report["end_date"]) == (
        "2026-W53",
        "2026-12-28",
        "2027-01-03",
    )
    assert [row["date"] for row in report["days"]] == [
        "2026-12-28",
        "2026-12-29",
        "2026-12-30",
        "2026-12-31",
        "2027-01-01",
        "2027-01-02",
        "2027-01-03",
    ]
    assert report["totals"] == {
        "logins": 2,
        "tasks_created": 1,
        "tasks_completed": 1,
        "active_days": 4,
        **undated_normal(1),
    }
    assert day(report, "2027-01-01")["tasks_completed"] == 1
    assert report["previous_week"] == {
        "week": "2026-W52",
        "totals": {
            "logins": 0,
            "tasks_created": 2,
            "tasks_completed": 0,
            "active_days": 1,
            **undated_normal(0),
        },
    }
    # Streaks as of the week's end: 01-03 is a login day, 01-02 is not.
    assert report["streaks"]["login"] == {
        "current": 1,
        "longest": 1,
        "last_active_date": "2027-01-03",
    }
    after = await weekly(client, issuer, user, "2027-W01", "UTC")
    assert after["previous_week"]["week"] == "2026-W53"
    assert after["previous_week"]["totals"] == report["totals"]
    assert (after["start_date"], after["end_date"]) == ("2027-01-04", "2027-01-10")
    bad = await client.get(
        "/analytics/reports/weekly", params={"week": "2027-W53"}, headers=issuer.bearer(user)
    )
    assert bad.status_code == 422
    streaks = (await client.get("/analytics/streaks", headers=issuer.bearer(user, tz="UTC"))).json()
    assert streaks["today"] == "2027-01-05"
    assert streaks["login"] == {"current": 2, "longest": 2, "last_active_date": "2027-01-04"}
    assert streaks["completion"] == {
        "current": 0,
        "longest": 1,
        "last_active_date": "2027-01-01",
    }


async def test_fallback_timezone_is_the_last_known_one_whatever_the_order(
    client: httpx.AsyncClient, issuer: TestIssuer, clock: FixedClock, feed: Feed
) -> None:
    clock.now = at("2026-06-10T12:00:00Z")
    user, other = uuid.uuid4(), uuid.uuid4()
    task = uuid.uuid4()
    # Published newest announcement first: delivery order must not matter (rule 2).
    await feed(
        [
            updated(user, at("2026-06-02T00:00:00Z"), "Pacific/Pago_Pago", usertz="UTC"),
            logged_in(user, at("2026-06-03T05:00:00Z"), usertz=None),  # Pago Pago: 06-02 18:00
            completed(user, at("2026-06-03T05:00:00Z"), task, usertz="Not/AZone"),
            registered(user, at("2026-06-01T00:00:00Z"), "Pacific/Kiritimati", usertz="UTC"),
            updated(user, at("2026-06-05T00:00:00Z"), "Invalid/Zone", usertz="UTC"),
            logged_in(other, at("2026-06-03T05:00:00Z"), usertz=None),  # never announced: UTC
        ]
    )
    report = await weekly(client, issuer, user, "2026-W23", "UTC")
    assert day(report, "2026-06-02")["logins"] == 1
    assert day(report, "2026-06-02")["tasks_completed"] == 1
    assert day(report, "2026-06-03")["logins"] == 0
    report = await weekly(client, issuer, other, "2026-W23", "UTC")
    assert day(report, "2026-06-03")["logins"] == 1
    # A newer announcement moves the events that had no usable usertz.
    await feed([updated(user, at("2026-06-06T00:00:00Z"), "Pacific/Kiritimati", usertz="UTC")])
    report = await weekly(client, issuer, user, "2026-W23", "UTC")
    assert day(report, "2026-06-02")["logins"] == 0
    assert day(report, "2026-06-03") == {
        "date": "2026-06-03",
        "logins": 1,
        "tasks_created": 0,
        "tasks_completed": 1,
    }
    assert report["streaks"]["completion"]["last_active_date"] == "2026-06-03"
