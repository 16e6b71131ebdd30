"""Recurring tasks (docs/spec/tasks.md §2.3), through the API, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

import httpx
import pytest
from dateutil.rrule import rrulestr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from momentum_devtools.testing.issuer import TestIssuer
from services.tasks.tests.support import Events, Headers, NewTask

BERLIN = ZoneInfo("Europe/Berlin")


async def _complete(
    client: httpx.AsyncClient, headers: Headers, task: dict[str, Any]
) -> httpx.Response:
    return await client.post(f"/tasks/{task['id']}/complete", headers=headers)


async def _due_dates(
    client: httpx.AsyncClient, headers: Headers, task: dict[str, Any], times: int
) -> list[str]:
    """Complete ``task`` ``times`` times; the due_at it has after each completion."""
    seen = []
    for _ in range(times):
        response = await _complete(client, headers, task)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "open"
        seen.append(response.json()["due_at"])
    return seen


@pytest.mark.parametrize(
    ("rule", "part"),
    [
        ("FREQ=DAILY;BYHOUR=9", "BYHOUR"),
        ("FREQ=MONTHLY;BYDAY=MO;BYSETPOS=1", "BYSETPOS"),
        ("FREQ=WEEKLY;WKST=SU", "WKST"),
        ("FREQ=HOURLY", "FREQ"),
        ("INTERVAL=2", "FREQ"),
        ("FREQ=DAILY;INTERVAL=0", "INTERVAL"),
        ("FREQ=DAILY;INTERVAL=two", "INTERVAL"),
        ("FREQ=WEEKLY;BYDAY=1MO", "BYDAY"),
        ("FREQ=MONTHLY;BYDAY=XX", "BYDAY"),
        ("FREQ=MONTHLY;BYMONTHDAY=32", "BYMONTHDAY"),
        ("FREQ=DAILY;COUNT=0", "COUNT"),
        ("FREQ=DAILY;UNTIL=tomorrow", "UNTIL"),
        ("FREQ=DAILY;COUNT=3;UNTIL=20270101", "UNTIL"),
        ("FREQ=DAILY;FREQ=WEEKLY", "FREQ"),
        ("DTSTART:20261201T090000Z\nRRULE:FREQ=DAILY", "DTSTART"),
        ("FREQ=DAILY;DTSTART=20261201T090000Z", "DTSTART"),
        ("every day", "EVERY DAY"),
    ],
)
async def test_a_recurrence_outside_the_subset_is_refused_naming_its_part(
    client: httpx.AsyncClient, alice: Headers, rule: str, part: str
) -> None:
    body = {"title": "Stretch", "due_at": "2026-12-07T08:00:00Z", "recurrence": rule}
    response = await client.post("/tasks", json=body, headers=alice)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    [error] = response.json()["errors"]
    assert error["loc"] == ["body", "recurrence"]
    assert part in error["msg"]


async def test_a_recurring_task_needs_a_due_date(
    client: httpx.AsyncClient, alice: Headers, new_task: NewTask
) -> None:
    response = await client.post(
        "/tasks", json={"title": "Stretch", "recurrence": "FREQ=DAILY"}, headers=alice
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "due_at"]

    undated = await new_task(alice)
    path = f"/tasks/{undated['id']}"
    response = await client.patch(path, json={"recurrence": "FREQ=DAILY"}, headers=alice)
    assert response.status_code == 422
    assert (await client.get(path, headers=alice)).json()["recurrence"] is None

    task = await new_task(alice, due_at="2026-12-07T08:00:00Z", recurrence="FREQ=DAILY")
    path = f"/tasks/{task['id']}"
    response = await client.patch(path, json={"due_at": None}, headers=alice)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "due_at"]
    # Both at once: no longer recurring, so no due date is needed.
    response = await client.patch(path, json={"due_at": None, "recurrence": None}, headers=alice)
    assert response.status_code == 200
    assert response.json()["recurrence"] is None
    assert response.json()["due_at"] is None


async def test_the_recurrence_is_stored_upper_cased_and_can_be_cleared(
    client: httpx.AsyncClient, alice: Headers, new_task: NewTask
) -> None:
    task = await new_task(alice, due_at="2026-12-07T08:00:00Z", recurrence=" freq=weekly;byday=mo ")
    assert task["recurrence"] == "FREQ=WEEKLY;BYDAY=MO"
    assert task["last_completed_at"] is None
    path = f"/tasks/{task['id']}"
    fetched = await client.get(path, headers=alice)
    assert fetched.json()["recurrence"] == "FREQ=WEEKLY;BYDAY=MO"
    cleared = await client.patch(path, json={"recurrence": None}, headers=alice)
    assert cleared.json()["recurrence"] is None
    assert cleared.json()["version"] == 2
    done = await client.post(f"{path}/complete", headers=alice)
    assert done.json()["status"] == "done"  # a one-off task again
    assert done.json()["last_completed_at"] is None


async def test_a_daily_task_stays_at_nine_in_berlin_across_both_clock_changes(
    client: httpx.AsyncClient, alice: Headers, new_task: NewTask
) -> None:
    spring = await new_task(alice, due_at="2026-03-27T08:00:00Z", recurrence="FREQ=DAILY")
    assert await _due_dates(client, alice, spring, 3) == [
        "2026-03-28T08:00:00Z",
        "2026-03-29T07:00:00Z",  # summer time from this day on
        "2026-03-30T07:00:00Z",
    ]
    autumn = await new_task(alice, due_at="2026-10-23T07:00:00Z", recurrence="FREQ=DAILY")
    due = await _due_dates(client, alice, autumn, 3)
    assert due == ["2026-10-24T07:00:00Z", "2026-10-25T08:00:00Z", "2026-10-26T08:00:00Z"]
    for moment in due:
        local = datetime.fromisoformat(moment).astimezone(BERLIN)
        assert (local.hour, local.minute) == (9, 0)


async def test_a_time_the_clocks_skip_moves_forward_and_a_repeated_time_is_the_first(
    client: httpx.AsyncClient, alice: Headers, new_task: NewTask
) -> None:
    # 02:30 Berlin time does not exist on 2026-03-29: that day it is 03:30 summer time.
    gap = await new_task(alice, due_at="2026-03-28T01:30:00Z", recurrence="FREQ=DAILY")
    assert await _due_dates(client, alice, gap, 2) == [
        "2026-03-29T01:30:00Z",
        "2026-03-30T00:30:00Z",
    ]
    # 02:30 happens twice on 2026-10-25: the first time, still summer time (00:30Z).
    fold = await new_task(alice, due_at="2026-10-24T00:30:00Z", recurrence="FREQ=DAILY")
    assert await _due_dates(client, alice, fold, 2) == [
        "2026-10-25T00:30:00Z",
        "2026-10-26T01:30:00Z",
    ]


async def test_monthly_on_the_31st_skips_the_months_without_one(
    client: httpx.AsyncClient, alice: Headers, new_task: NewTask
) -> None:
    task = await new_task(
        alice, due_at="2026-01-31T16:00:00Z", recurrence="FREQ=MONTHLY;BYMONTHDAY=31"
    )
    assert await _due_dates(client, alice, task, 4) == [
        "2026-03-31T15:00:00Z",  # no February 31st; 17:00 summer time
        "2026-05-31T15:00:00Z",
        "2026-07-31T15:00:00Z",
        "2026-08-31T15:00:00Z",
    ]


async def test_weekly_on_monday_wednesday_and_friday(
    client: httpx.AsyncClient, alice: Headers, new_task: NewTask
) -> None:
    # Monday 2026-12-07, 18:00 Berlin time.
    task = await new_task(
        alice, due_at="2026-12-07T17:00:00Z", recurrence="FREQ=WEEKLY;BYDAY=MO,WE,FR"
    )
    assert await _due_dates(client, alice, task, 4) == [
        "2026-12-09T17:00:00Z",
        "2026-12-11T17:00:00Z",
        "2026-12-14T17:00:00Z",
        "2026-12-16T17:00:00Z",
    ]


async def test_monthly_on_the_last_friday(
    client: httpx.AsyncClient, alice: Headers, new_task: NewTask
) -> None:
    task = await new_task(
        alice, due_at="2026-11-27T11:00:00Z", recurrence="FREQ=MONTHLY;BYDAY=-1FR"
    )
    assert await _due_dates(client, alice, task, 3) == [
        "2026-12-25T11:00:00Z",
        "2027-01-29T11:00:00Z",
        "2027-02-26T11:00:00Z",
    ]


async def test_count_counts_from_the_first_due_date_and_ends_the_task_done(
    client: httpx.AsyncClient, alice: Headers, new_task: NewTask, outbox_events: Events
) -> None:
    task = await new_task(alice, due_at="2026-12-07T08:00:00Z", recurrence="FREQ=DAILY;COUNT=3")
    assert await _due_dates(client, alice, task, 2) == [
        "2026-12-08T08:00:00Z",
        "2026-12-09T08:00:00Z",
    ]
    third = (await _complete(client, alice, task)).json()
    assert third["status"] == "done"
    assert third["due_at"] == "2026-12-09T08:00:00Z"  # the occurrence completed last
    assert third["completed_at"] is not None
    assert third["last_completed_at"] == third["completed_at"]
    assert third["version"] == 4
    completions = [e for e in await outbox_events() if e.type == "tasks.task.completed"]
    assert [e.data["due_at"] for e in completions] == [
        "2026-12-07T08:00:00Z",
        "2026-12-08T08:00:00Z",
        "2026-12-09T08:00:00Z",
    ]
    assert all(e.data["recurring"] is True for e in completions)


async def test_until_ends_the_series_after_its_last_occurrence(
    client: httpx.AsyncClient, alice: Headers, new_task: NewTask
) -> None:
    instant = await new_task(
        alice, due_at="2026-12-07T08:00:00Z", recurrence="FREQ=DAILY;UNTIL=20261208T080000Z"
    )
    assert await _due_dates(client, alice, instant, 1) == ["2026-12-08T08:00:00Z"]
    assert (await _complete(client, alice, instant)).json()["status"] == "done"
    # A date is a day in the user's zone: 00:30 Berlin time on the 10th (the 9th in UTC) is
    # after it.
    day = await new_task(
        alice, due_at="2026-12-06T23:30:00Z", recurrence="FREQ=DAILY;UNTIL=20261209"
    )
    assert await _due_dates(client, alice, day, 2) == [
        "2026-12-07T23:30:00Z",
        "2026-12-08T23:30:00Z",
    ]
    assert (await _complete(client, alice, day)).json()["status"] == "done"


async def test_a_recurring_completion_moves_the_task_on_and_emits_the_occurrence(
    client: httpx.AsyncClient,
    alice: Headers,
    alice_id: uuid.UUID,
    new_task: NewTask,
    outbox_events: Events,
) -> None:
    task = await new_task(alice, due_at="2026-12-07T08:00:00Z", recurrence="FREQ=DAILY")
    stale = await _complete(client, {**alice, "If-Match": '"7"'}, task)
    assert stale.status_code == 412
    response = await _complete(client, {**alice, "If-Match": '"1"'}, task)
    assert response.status_code == 200
    assert response.headers["ETag"] == '"2"'
    body = response.json()
    assert body["status"] == "open"
    assert body["completed_at"] is None
    assert body["due_at"] == "2026-12-08T08:00:00Z"
    assert body["version"] == 2
    assert body["updated_at"] == body["last_completed_at"]
    assert body["updated_at"] > task["updated_at"]
    [event] = [e for e in await outbox_events() if e.type == "tasks.task.completed"]
    assert event.data == {
        "task_id": task["id"],
        "user_id": str(alice_id),
        "completed_at": body["last_completed_at"],
        "due_at": "2026-12-07T08:00:00Z",
        "project_id": None,
        "recurring": True,
    }
    assert event.typed_data() is not None
    # The changes feed has the task at its next occurrence.
    feed = (await client.get("/tasks/changes", headers=alice)).json()
    assert [c["task"]["due_at"] for c in feed["changes"] if "task" in c] == ["2026-12-08T08:00:00Z"]


async def test_a_batch_completes_a_recurring_task_occurrence_by_occurrence(
    client: httpx.AsyncClient, alice: Headers, new_task: NewTask, outbox_events: Events
) -> None:
    task = await new_task(alice, due_at="2026-12-07T08:00:00Z", recurrence="FREQ=DAILY;COUNT=2")
    operations = [
        {"op": "complete", "id": task["id"], "if_match": '"1"'},
        {"op": "complete", "id": task["id"], "if_match": '"2"'},
        {
            "op": "create",
            "data": {"title": "Run", "due_at": "2026-12-07T06:00:00Z", "recurrence": "FREQ=WEEKLY"},
        },
    ]
    response = await client.post("/tasks/batch", json={"operations": operations}, headers=alice)
    assert response.status_code == 200, response.text
    first, second, created = (result["task"] for result in response.json()["results"])
    assert (first["status"], first["due_at"]) == ("open", "2026-12-08T08:00:00Z")
    assert (second["status"], second["due_at"]) == ("done", "2026-12-08T08:00:00Z")
    assert created["recurrence"] == "FREQ=WEEKLY"
    completions = [e for e in await outbox_events() if e.type == "tasks.task.completed"]
    assert [(e.data["due_at"], e.data["recurring"]) for e in completions] == [
        ("2026-12-07T08:00:00Z", True),
        ("2026-12-08T08:00:00Z", True),
    ]

    bad = {"op": "update", "id": created["id"], "data": {"recurrence": "FREQ=DAILY;BYHOUR=7"}}
    refused = await client.post("/tasks/batch", json={"operations": [bad]}, headers=alice)
    assert refused.status_code == 422
    [error] = refused.json()["errors"]
    assert error["loc"] == ["body", "operations", "0", "data", "recurrence"]
    assert "BYHOUR" in error["detail"]
    undated = {"op": "update", "id": created["id"], "data": {"due_at": None}}
    refused = await client.post("/tasks/batch", json={"operations": [undated]}, headers=alice)
    assert refused.status_code == 422
    assert "due_at" in refused.json()["errors"][0]["detail"]


async def test_reopening_a_finished_series_opens_its_last_occurrence_again(
    client: httpx.AsyncClient, alice: Headers, new_task: NewTask, outbox_events: Events
) -> None:
    task = await new_task(alice, due_at="2026-12-07T08:00:00Z", recurrence="FREQ=DAILY;COUNT=2")
    path = f"/tasks/{task['id']}"
    await _due_dates(client, alice, task, 1)
    # Reopening an open recurring task changes nothing: a completion is not undone.
    same = await client.post(f"{path}/reopen", headers=alice)
    assert (same.json()["version"], same.json()["due_at"]) == (2, "2026-12-08T08:00:00Z")
    done = (await _complete(client, alice, task)).json()
    assert done["status"] == "done"
    reopened = (await client.post(f"{path}/reopen", headers=alice)).json()
    assert reopened["status"] == "open"
    assert reopened["completed_at"] is None
    assert reopened["due_at"] == "2026-12-08T08:00:00Z"
    assert reopened["last_completed_at"] == done["last_completed_at"]
    # Still the last of the two occurrences: completing it finishes the series again.
    again = (await _complete(client, alice, task)).json()
    assert (again["status"], again["due_at"]) == ("done", "2026-12-08T08:00:00Z")
    types = [e.type for e in await outbox_events()]
    assert types.count("tasks.task.completed") == 3
    assert types.count("tasks.task.reopened") == 1


async def test_changing_the_due_date_or_the_rule_starts_the_series_again(
    client: httpx.AsyncClient, alice: Headers, new_task: NewTask
) -> None:
    task = await new_task(alice, due_at="2026-12-07T08:00:00Z", recurrence="FREQ=DAILY;COUNT=2")
    path = f"/tasks/{task['id']}"
    await _due_dates(client, alice, task, 1)
    # Moved to 10:00: the series begins again there, with two occurrences.
    moved = await client.patch(path, json={"due_at": "2026-12-10T09:00:00Z"}, headers=alice)
    assert moved.status_code == 200
    assert await _due_dates(client, alice, task, 1) == ["2026-12-11T09:00:00Z"]
    assert (await _complete(client, alice, task)).json()["status"] == "done"
    await client.post(f"{path}/reopen", headers=alice)
    weekly = await client.patch(path, json={"recurrence": "FREQ=WEEKLY;COUNT=2"}, headers=alice)
    assert weekly.json()["version"] == 7
    assert await _due_dates(client, alice, task, 1) == ["2026-12-18T09:00:00Z"]


async def test_occurrences_follow_the_zone_of_the_token(
    client: httpx.AsyncClient, issuer: TestIssuer, new_task: NewTask
) -> None:
    user = uuid.uuid4()
    new_york = issuer.bearer(user, tz="America/New_York")
    # 09:00 New York time on Saturday 2026-10-31; the clocks go back on Sunday.
    task = await new_task(new_york, due_at="2026-10-31T13:00:00Z", recurrence="FREQ=DAILY")
    assert await _due_dates(client, new_york, task, 2) == [
        "2026-11-01T14:00:00Z",
        "2026-11-02T14:00:00Z",
    ]
    # A token without a usable zone: UTC, where the first due date was at 13:00.
    nowhere = issuer.bearer(user, tz="Not/AZone")
    assert await _due_dates(client, nowhere, task, 1) == ["2026-11-03T13:00:00Z"]


# Property tests: the service against dateutil, over random rules and zones.

ZONES = sorted(available_timezones())
DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


@dataclass(frozen=True)
class Series:
    rule: str
    zone: str
    first_local: datetime
    completions: int


@st.composite
def series(draw: st.DrawFn) -> Series:
    freq = draw(st.sampled_from(("DAILY", "WEEKLY", "MONTHLY", "YEARLY")))
    parts = [f"FREQ={freq}"]
    if draw(st.booleans()):
        parts.append(f"INTERVAL={draw(st.integers(1, 4))}")
    if freq == "WEEKLY" and draw(st.booleans()):
        days = draw(st.lists(st.sampled_from(DAYS), min_size=1, max_size=4, unique=True))
        parts.append("BYDAY=" + ",".join(days))
    elif freq == "MONTHLY" and draw(st.booleans()):
        ordinal = draw(st.sampled_from(("", "1", "2", "-1", "+3", "4")))
        parts.append(f"BYDAY={ordinal}{draw(st.sampled_from(DAYS))}")
    elif freq in ("MONTHLY", "YEARLY") and draw(st.booleans()):
        days = draw(
            st.lists(st.one_of(st.integers(1, 31), st.integers(-31, -1)), min_size=1, max_size=3)
        )
        parts.append("BYMONTHDAY=" + ",".join(str(day) for day in days))
    if draw(st.booleans()):
        parts.append(f"COUNT={draw(st.integers(1, 5))}")
    first_local = draw(
        st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2030, 12, 31))
    ).replace(hour=draw(st.integers(6, 21)), minute=draw(st.sampled_from((0, 15, 30))))
    first_local = first_local.replace(second=0, microsecond=0)
    return Series(
        rule=";".join(parts),
        zone=draw(st.sampled_from(ZONES)),
        first_local=first_local,
        completions=draw(st.integers(1, 4)),
    )


def expected_due_dates(case: Series) -> list[datetime | None]:
    """After each completion, the due date dateutil gives (None: the task is done)."""
    zone = ZoneInfo(case.zone)
    parts = case.rule.split(";")
    count = next((int(p.split("=")[1]) for p in parts if p.startswith("COUNT=")), None)
    expansion = ";".join(p for p in parts if not p.startswith("COUNT="))
    later = rrulestr(expansion, dtstart=case.first_local).xafter(case.first_local)
    due: list[datetime | None] = []
    for number, local in enumerate(itertools.islice(later, case.completions), start=1):
        # The first due date is occurrence 1: COUNT=n leaves n - 1 after it.
        due.append(None if count is not None and number >= count else local)
    due += [None] * (case.completions - len(due))
    return [None if local is None else local.replace(tzinfo=zone).astimezone(UTC) for local in due]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=series())
async def test_the_next_occurrence_is_the_one_dateutil_computes(
    client: httpx.AsyncClient, issuer: TestIssuer, case: Series
) -> None:
    headers = issuer.bearer(uuid.uuid4(), tz=case.zone)
    zone = ZoneInfo(case.zone)
    first = case.first_local.replace(tzinfo=zone).astimezone(UTC)
    response = await client.post(
        "/tasks",
        json={"title": "Again", "due_at": first.isoformat(), "recurrence": case.rule},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    task = response.json()
    for expected in expected_due_dates(case):
        body = (await _complete(client, headers, task)).json()
        if expected is None:
            assert body["status"] == "done"
            break
        assert body["status"] == "open"
        due = datetime.fromisoformat(body["due_at"])
        assert due == expected
        if case.rule.startswith("FREQ=DAILY"):
            # Every occurrence on the wall clock of the first. The first times drawn (06:00
            # to 21:30) are never skipped in any zone from 2026 to 2030.
            assert due.astimezone(zone).time() == case.first_local.time()
