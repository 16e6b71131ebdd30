"""Monthly, range, calendar reports, totals (docs/spec/analytics.md §5, rules 10 to 12)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest

from momentum_devtools.testing.issuer import TestIssuer
from momentum_shared.events import CloudEvent, format_utc
from services.analytics.tests.conftest import Feed
from services.analytics.tests.support import (
    FixedClock,
    at,
    cloud_event,
    completed,
    created,
    logged_in,
)


async def get(
    client: httpx.AsyncClient, issuer: TestIssuer, path: str, user: uuid.UUID, **params: Any
) -> dict[str, Any]:
    response = await client.get(path, params=params, headers=issuer.bearer(user, tz="UTC"))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def finished(user: uuid.UUID, when: datetime, task: uuid.UUID, due: datetime | None) -> CloudEvent:
    return cloud_event(
        "tasks.task.completed",
        user,
        when,
        usertz="UTC",
        task_id=str(task),
        completed_at=format_utc(when),
        due_at=None if due is None else format_utc(due),
    )


def made(user: uuid.UUID, when: datetime, task: uuid.UUID, priority: str) -> CloudEvent:
    return cloud_event(
        "tasks.task.created",
        user,
        when,
        usertz="UTC",
        task_id=str(task),
        priority=priority,
        due_at=None,
        created_at=format_utc(when),
    )


async def test_a_monthly_report_has_every_day_of_the_month_and_the_month_before(
    client: httpx.AsyncClient, issuer: TestIssuer, clock: FixedClock, feed: Feed
) -> None:
    user = uuid.uuid4()
    clock.now = at("2026-11-26T12:00:00Z")
    await feed(
        [
            logged_in(user, at("2026-10-31T10:00:00Z"), usertz="UTC"),
            completed(user, at("2026-10-31T11:00:00Z"), uuid.uuid4(), usertz="UTC"),
            completed(user, at("2026-11-01T11:00:00Z"), uuid.uuid4(), usertz="UTC"),
            created(user, at("2026-11-25T11:00:00Z"), uuid.uuid4(), usertz="UTC"),
            logged_in(user, at("2026-11-26T08:00:00Z"), "refresh", usertz="UTC"),
        ]
    )
    report = await get(client, issuer, "/analytics/reports/monthly", user)
    assert (report["month"], report["start_date"], report["end_date"]) == (
        "2026-11",
        "2026-11-01",
        "2026-11-30",
    )
    assert len(report["days"]) == 30
    assert report["days"][0] == {
        "date": "2026-11-01",
        "logins": 0,
        "tasks_created": 0,
        "tasks_completed": 1,
    }
    totals = report["totals"]
    assert (totals["logins"], totals["tasks_created"], totals["tasks_completed"]) == (0, 1, 1)
    assert totals["active_days"] == 3
    assert report["previous_month"]["month"] == "2026-10"
    assert report["previous_month"]["totals"]["logins"] == 1
    assert report["streaks"]["completion"] == {
        "current": 0,
        "longest": 2,
        "last_active_date": "2026-11-01",
    }
    october = await get(client, issuer, "/analytics/reports/monthly", user, month="2026-10")
    assert october["streaks"]["completion"]["last_active_date"] == "2026-10-31"
    assert len(october["days"]) == 31


async def test_february_of_a_leap_year_has_29_days(
    client: httpx.AsyncClient, issuer: TestIssuer, clock: FixedClock
) -> None:
    clock.now = at("2028-03-01T00:00:00Z")
    report = await get(client, issuer, "/analytics/reports/monthly", uuid.uuid4(), month="2028-02")
    assert report["end_date"] == "2028-02-29"
    assert len(report["days"]) == 29


@pytest.mark.parametrize(
    "month",
    ["2026-13", "2026-00", "2026-1", "26-11", "2026-11 ", "2026-11\n", "0000-05", "2026-12"],
)
async def test_malformed_or_future_months_are_422(
    client: httpx.AsyncClient, issuer: TestIssuer, clock: FixedClock, month: str
) -> None:
    clock.now = at("2026-11-26T12:00:00Z")
    response = await client.get(
        "/analytics/reports/monthly", params={"month": month}, headers=issuer.bearer()
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"][0]["loc"] == ["query", "month"]


async def test_range_buckets_follow_iso_weeks_and_months_clipped_to_the_range(
    client: httpx.AsyncClient, issuer: TestIssuer, feed: Feed
) -> None:
    user = uuid.uuid4()
    await feed(
        [
            completed(user, at("2026-11-25T11:00:00Z"), uuid.uuid4(), usertz="UTC"),
            completed(user, at("2026-11-29T23:30:00Z"), uuid.uuid4(), usertz="UTC"),
            logged_in(user, at("2026-11-30T00:10:00Z"), usertz="UTC"),
            completed(user, at("2026-12-03T11:00:00Z"), uuid.uuid4(), usertz="UTC"),
        ]
    )
    weeks = await get(
        client,
        issuer,
        "/analytics/reports",
        user,
        **{"from": "2026-11-25", "to": "2026-12-02"},
        group="week",
    )
    assert (weeks["from"], weeks["to"]) == ("2026-11-25", "2026-12-02")
    assert [
        (b["start"], b["end"], b["tasks_completed"], b["logins"]) for b in weeks["buckets"]
    ] == [
        ("2026-11-25", "2026-11-29", 2, 0),
        ("2026-11-30", "2026-12-02", 0, 1),
    ]
    assert weeks["totals"]["tasks_completed"] == 2
    assert weeks["totals"]["active_days"] == 3
    months = await get(
        client,
        issuer,
        "/analytics/reports",
        user,
        **{"from": "2026-10-15", "to": "2027-01-10"},
        group="month",
    )
    assert [(b["start"], b["end"]) for b in months["buckets"]] == [
        ("2026-10-15", "2026-10-31"),
        ("2026-11-01", "2026-11-30"),
        ("2026-12-01", "2026-12-31"),
        ("2027-01-01", "2027-01-10"),
    ]
    assert [b["tasks_completed"] for b in months["buckets"]] == [0, 2, 1, 0]
    days = await get(
        client, issuer, "/analytics/reports", user, **{"from": "2026-11-29", "to": "2026-11-29"}
    )
    assert days["group"] == "day"
    assert days["buckets"] == [
        {
            "start": "2026-11-29",
            "end": "2026-11-29",
            "logins": 0,
            "tasks_created": 0,
            "tasks_completed": 1,
            "active_days": 1,
        }
    ]


async def test_a_range_of_366_days_is_allowed_and_one_of_367_is_not(
    client: httpx.AsyncClient, issuer: TestIssuer
) -> None:
    user = uuid.uuid4()
    leap = await get(
        client, issuer, "/analytics/reports", user, **{"from": "2028-01-01", "to": "2028-12-31"}
    )
    assert len(leap["buckets"]) == 366
    response = await client.get(
        "/analytics/reports",
        params={"from": "2027-01-01", "to": "2028-01-02"},
        headers=issuer.bearer(user),
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    "params",
    [
        {"from": "2026-11-02", "to": "2026-11-01"},
        {"from": "2026-11-01"},
        {"to": "2026-11-01"},
        {"from": "2026-11-31", "to": "2026-12-01"},
        {"from": "2026-11-01", "to": "2026-11-02", "group": "year"},
    ],
)
async def test_bad_ranges_are_422(
    client: httpx.AsyncClient, issuer: TestIssuer, params: dict[str, str]
) -> None:
    response = await client.get("/analytics/reports", params=params, headers=issuer.bearer())
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_the_calendar_levels_days_by_the_quartiles_of_completion_days(
    client: httpx.AsyncClient, issuer: TestIssuer, clock: FixedClock, feed: Feed
) -> None:
    user = uuid.uuid4()
    clock.now = at("2026-11-26T12:00:00Z")
    events = []
    for day, count in (("01-05", 1), ("02-05", 2), ("03-05", 3), ("04-05", 4), ("05-05", 9)):
        events += [
            completed(user, at(f"2026-{day}T10:00:00Z"), uuid.uuid4(), usertz="UTC")
            for _ in range(count)
        ]
    events.append(completed(user, at("2025-12-31T10:00:00Z"), uuid.uuid4(), usertz="UTC"))
    await feed(events)
    body = await get(client, issuer, "/analytics/calendar", user)
    assert body["year"] == 2026
    assert len(body["days"]) == 365
    levels = {day["date"]: day["level"] for day in body["days"] if day["level"]}
    # Five values 1, 2, 3, 4, 9: quartile thresholds v[2], v[3], v[4] = 2, 3, 4.
    assert levels == {
        "2026-01-05": 1,
        "2026-02-05": 1,
        "2026-03-05": 2,
        "2026-04-05": 3,
        "2026-05-05": 4,
    }
    other = await get(client, issuer, "/analytics/calendar", user, year=2025)
    assert other["days"][-1] == {
        "date": "2025-12-31",
        "tasks_completed": 1,
        "tasks_created": 0,
        "logins": 0,
        "level": 1,
    }
    leap = await get(client, issuer, "/analytics/calendar", user, year=2028)
    assert len(leap["days"]) == 366
    assert {day["level"] for day in leap["days"]} == {0}


@pytest.mark.parametrize("year", ["0", "10000", "twenty", "2026.5"])
async def test_malformed_calendar_years_are_422(
    client: httpx.AsyncClient, issuer: TestIssuer, year: str
) -> None:
    response = await client.get(
        "/analytics/calendar", params={"year": year}, headers=issuer.bearer()
    )
    assert response.status_code == 422


async def test_completions_are_on_time_late_or_undated_by_their_first_completion_that_day(
    client: httpx.AsyncClient, issuer: TestIssuer, clock: FixedClock, feed: Feed
) -> None:
    user = uuid.uuid4()
    clock.now = at("2026-11-26T23:00:00Z")
    due = at("2026-11-24T12:00:00Z")
    exact, late, undated, twice = (uuid.uuid4() for _ in range(4))
    await feed(
        [
            finished(user, due, exact, due),  # completed_at == due_at: on time
            finished(user, at("2026-11-24T13:00:00Z"), late, due),
            finished(user, at("2026-11-24T14:00:00Z"), undated, None),
            finished(user, at("2026-11-25T13:00:00Z"), twice, due),  # late
            finished(user, at("2026-11-25T15:00:00Z"), twice, at("2026-11-26T00:00:00Z")),
        ]
    )
    totals = (await get(client, issuer, "/analytics/reports/weekly", user))["totals"]
    assert (
        totals["tasks_completed"],
        totals["completed_on_time"],
        totals["completed_late"],
        totals["completed_undated"],
    ) == (4, 1, 2, 1)
    # An earlier completion of ``twice`` that day, arriving late, now classifies it.
    await feed([finished(user, at("2026-11-25T09:00:00Z"), twice, at("2026-11-25T10:00:00Z"))])
    totals = (await get(client, issuer, "/analytics/reports/weekly", user))["totals"]
    assert (totals["completed_on_time"], totals["completed_late"]) == (2, 1)
    assert totals["completed_by_priority"] == {"low": 0, "normal": 4, "high": 0}


async def test_completions_count_by_the_priority_last_known_even_when_it_arrives_late(
    client: httpx.AsyncClient, issuer: TestIssuer, clock: FixedClock, feed: Feed
) -> None:
    user = uuid.uuid4()
    clock.now = at("2026-11-30T12:00:00Z")
    high, low, unknown = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await feed(
        [
            made(user, at("2026-11-02T09:00:00Z"), high, "high"),
            finished(user, at("2026-11-03T09:00:00Z"), high, None),
            finished(user, at("2026-11-04T09:00:00Z"), high, None),  # another day: counts again
            finished(user, at("2026-11-05T09:00:00Z"), low, None),
            finished(user, at("2026-11-05T10:00:00Z"), unknown, None),
        ]
    )
    monthly = await get(client, issuer, "/analytics/reports/monthly", user, month="2026-11")
    assert monthly["totals"]["completed_by_priority"] == {"low": 0, "normal": 2, "high": 2}
    await feed([made(user, at("2026-11-01T09:00:00Z"), low, "low")])  # its creation, late
    monthly = await get(client, issuer, "/analytics/reports/monthly", user, month="2026-11")
    assert monthly["totals"]["completed_by_priority"] == {"low": 1, "normal": 1, "high": 2}
    assert monthly["totals"]["completed_undated"] == 4


def changed(user: uuid.UUID, when: datetime, task: uuid.UUID, priority: str | None) -> CloudEvent:
    data: dict[str, Any] = {"task_id": str(task), "changed": ["priority"], "version": 2}
    if priority is not None:
        data["priority"] = priority
    return cloud_event("tasks.task.updated", user, when, usertz="UTC", **data)


async def test_a_changed_priority_moves_the_completions_already_counted(
    client: httpx.AsyncClient, issuer: TestIssuer, clock: FixedClock, feed: Feed
) -> None:
    user = uuid.uuid4()
    clock.now = at("2026-11-30T12:00:00Z")
    task = uuid.uuid4()
    await feed(
        [
            made(user, at("2026-11-02T09:00:00Z"), task, "low"),
            finished(user, at("2026-11-03T09:00:00Z"), task, None),
        ]
    )
    monthly = await get(client, issuer, "/analytics/reports/monthly", user, month="2026-11")
    assert monthly["totals"]["completed_by_priority"] == {"low": 1, "normal": 0, "high": 0}
    # Raised after the completion: the day counts it as high now (the last known priority).
    await feed([changed(user, at("2026-11-10T09:00:00Z"), task, "high")])
    monthly = await get(client, issuer, "/analytics/reports/monthly", user, month="2026-11")
    assert monthly["totals"]["completed_by_priority"] == {"low": 0, "normal": 0, "high": 1}
    # An older change arriving late, and one that carries no priority, change nothing.
    await feed(
        [
            changed(user, at("2026-11-05T09:00:00Z"), task, "normal"),
            changed(user, at("2026-11-20T09:00:00Z"), task, None),
        ]
    )
    monthly = await get(client, issuer, "/analytics/reports/monthly", user, month="2026-11")
    assert monthly["totals"]["completed_by_priority"] == {"low": 0, "normal": 0, "high": 1}
    assert monthly["totals"]["tasks_completed"] == 1


async def test_a_range_at_the_end_of_the_calendar_clips_its_last_week(
    client: httpx.AsyncClient, issuer: TestIssuer
) -> None:
    body = await get(
        client,
        issuer,
        "/analytics/reports",
        uuid.uuid4(),
        **{"from": "9999-12-20", "to": "9999-12-31"},
        group="week",
    )
    assert [(b["start"], b["end"]) for b in body["buckets"]] == [
        ("9999-12-20", "9999-12-26"),
        ("9999-12-27", "9999-12-31"),
    ]
