"""Property tests: random event sets through JetStream and the real consumer, against the reference.

Duplicates, shuffled delivery, DST in New York and Berlin, UTC+14 and UTC-11, missing or
invalid ``usertz`` and timezone announcements in any order: the routes must answer what
the pure reference computes from the same events.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from momentum_devtools.testing.issuer import TestIssuer
from momentum_shared.events import CloudEvent
from services.analytics.tests.conftest import Feed
from services.analytics.tests.reference import Reference
from services.analytics.tests.support import (
    FixedClock,
    as_reference,
    cloud_event,
    completed,
    created,
    logged_in,
)

ZONES = [
    "America/New_York",
    "Europe/Berlin",
    "Pacific/Kiritimati",  # UTC+14
    "Pacific/Pago_Pago",  # UTC-11
    "UTC",
]
BAD_ZONES: list[str | None] = [None, "", "Not/AZone", "Mars/Olympus"]
# Windows of 16 days around both 2026 DST transitions of each zone, and the year's end (W53).
WINDOWS = [
    datetime(2026, 3, 4, tzinfo=UTC),  # New York 03-08, Berlin 03-29 is in the next window
    datetime(2026, 3, 22, tzinfo=UTC),
    datetime(2026, 10, 20, tzinfo=UTC),  # Berlin 10-25, New York 11-01
    datetime(2026, 12, 22, tzinfo=UTC),  # 2026-W53 and the turn of the year
]
WINDOW_MINUTES = 16 * 24 * 60


@dataclass(frozen=True)
class Spec:
    """One symbolic event; ids become fresh UUIDs each time an example runs."""

    kind: str
    user: int
    minute: int
    usertz: str | None
    task: int = 0
    method: str = "password"
    timezone: str = "UTC"


def minutes() -> st.SearchStrategy[int]:
    """Minutes into the window: uniform, or next to a local midnight or a DST switch.

    In UTC hours: midnight in UTC (0), Kiritimati (10), Pago Pago (11), New York (4, 5),
    Berlin (22, 23); the DST switches happen at 01:00 (Berlin), 06:00 and 07:00 (New York).
    """
    near_edge = st.builds(
        lambda day, hour, delta: day * 1440 + hour * 60 + delta,
        st.integers(0, 15),
        st.sampled_from([0, 1, 4, 5, 6, 7, 10, 11, 22, 23]),
        st.integers(-2, 2),
    )
    return st.one_of(st.integers(0, WINDOW_MINUTES - 1), near_edge).map(
        lambda minute: min(max(minute, 0), WINDOW_MINUTES - 1)
    )


usertz = st.one_of(st.sampled_from(ZONES), st.sampled_from(BAD_ZONES))

spec = st.one_of(
    st.builds(
        Spec,
        kind=st.sampled_from(["auth.user.registered", "auth.user.updated"]),
        user=st.integers(0, 1),
        minute=minutes(),
        usertz=usertz,
        timezone=st.one_of(st.sampled_from(ZONES), st.just("Invalid/Zone")),
    ),
    st.builds(
        Spec,
        kind=st.just("auth.user.logged_in"),
        user=st.integers(0, 1),
        minute=minutes(),
        usertz=usertz,
        method=st.sampled_from(["password", "refresh"]),
    ),
    st.builds(
        Spec,
        kind=st.sampled_from(
            [
                "tasks.task.created",
                "tasks.task.completed",
                "tasks.task.completed",
                "tasks.task.reopened",
                "tasks.task.deleted",
                "tasks.task.archived",  # a type nobody knows: acked and ignored
            ]
        ),
        user=st.integers(0, 1),
        minute=minutes(),
        usertz=usertz,
        task=st.integers(0, 3),
    ),
)


@dataclass(frozen=True)
class Scenario:
    window: datetime
    specs: list[Spec]
    duplicates: list[int]
    order_seed: int
    today_offset_hours: int
    query_tz: str


scenarios = st.builds(
    Scenario,
    window=st.sampled_from(WINDOWS),
    specs=st.lists(spec, max_size=30),
    duplicates=st.lists(st.integers(0, 29), max_size=6),
    order_seed=st.integers(0, 2**16),
    today_offset_hours=st.integers(-5 * 24, 4 * 24),
    query_tz=st.sampled_from(ZONES),
)


def materialise(scenario: Scenario) -> tuple[list[uuid.UUID], list[CloudEvent]]:
    users = [uuid.uuid4(), uuid.uuid4()]
    tasks = [uuid.uuid4() for _ in range(4)]
    events: list[CloudEvent] = []
    for item in scenario.specs:
        user = users[item.user]
        when = scenario.window + timedelta(minutes=item.minute, seconds=item.minute % 7)
        task = tasks[item.task]
        if item.kind in ("auth.user.registered", "auth.user.updated"):
            event = cloud_event(item.kind, user, when, usertz=item.usertz, timezone=item.timezone)
        elif item.kind == "auth.user.logged_in":
            event = logged_in(user, when, item.method, usertz=item.usertz)
        elif item.kind == "tasks.task.created":
            event = created(user, when, task, usertz=item.usertz)
        elif item.kind == "tasks.task.completed":
            event = completed(user, when, task, usertz=item.usertz)
        else:
            event = cloud_event(item.kind, user, when, usertz=item.usertz, task_id=str(task))
        events.append(event)
    published = list(events)
    published += [events[index] for index in scenario.duplicates if index < len(events)]
    random.Random(scenario.order_seed).shuffle(published)
    return users, published


def mondays(first: date, last: date) -> list[date]:
    monday = first - timedelta(days=first.weekday())
    weeks = []
    while monday <= last:
        weeks.append(monday)
        monday += timedelta(days=7)
    return weeks


def comparable(report: dict[str, Any]) -> dict[str, Any]:
    return {
        key: value
        for key, value in report.items()
        if key not in ("generated_at", "user_id", "timezone")
    }


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios)
async def test_routes_agree_with_the_reference(
    client: httpx.AsyncClient,
    issuer: TestIssuer,
    clock: FixedClock,
    feed: Feed,
    scenario: Scenario,
) -> None:
    users, published = materialise(scenario)
    await feed(published)
    reference = Reference([as_reference(event) for event in published])
    clock.now = scenario.window + timedelta(days=16, hours=scenario.today_offset_hours)

    def today_of(user: uuid.UUID) -> date:
        # §1: the user's last known timezone, the token's only when analytics knows none.
        zone = reference.last_known_timezone(user) or scenario.query_tz
        return clock.now.astimezone(ZoneInfo(zone)).date()

    for user in users:
        today = today_of(user)
        headers = issuer.bearer(user, tz=scenario.query_tz)
        streaks = (await client.get("/analytics/streaks", headers=headers)).json()
        assert streaks["today"] == today.isoformat()
        for kind in ("login", "completion"):
            assert streaks[kind] == reference.streak(user, kind, today), kind

    user = users[0]
    today = today_of(user)
    headers = issuer.bearer(user, tz=scenario.query_tz)
    for monday in mondays(scenario.window.date() - timedelta(days=2), today):
        year, week, _ = monday.isocalendar()
        response = await client.get(
            "/analytics/reports/weekly", params={"week": f"{year}-W{week:02d}"}, headers=headers
        )
        assert response.status_code == 200, response.text
        assert comparable(response.json()) == reference.weekly_report(user, monday, today)
