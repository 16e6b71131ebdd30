"""Property tests of the second edition: random events and goals against the oracle.

Random order and duplicates, DST days, timezone announcements (so "today" moves with the
user), completions with and without due dates, priorities arriving before or after their
completions, goal changes between two deliveries (so some events arrive late, after the
goals of their days were set): goals, monthly, range and calendar answers must be what
``oracle.py`` computes from the same events by the spec's words.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from momentum_devtools.testing.issuer import TestIssuer
from momentum_shared.events import CloudEvent, format_utc
from services.analytics.tests.conftest import Feed
from services.analytics.tests.oracle import GoalHistory, Oracle, monday_of
from services.analytics.tests.support import FixedClock, as_reference, cloud_event, logged_in
from services.analytics.tests.test_properties import BAD_ZONES, WINDOWS, ZONES, minutes

READ_WRITE = "analytics:read analytics:write"
DAYS = 16


@dataclass(frozen=True)
class Item:
    """One symbolic event; ``late`` ones are delivered after the goals are set."""

    kind: str
    user: int
    minute: int
    usertz: str | None
    late: bool
    task: int = 0
    timezone: str = "UTC"
    priority: str = "normal"
    due_minutes: int | None = None  # the due time relative to the completion


@dataclass(frozen=True)
class GoalChange:
    minute: int
    daily: int | None
    weekly: int | None


usertz = st.one_of(st.sampled_from(ZONES), st.sampled_from(BAD_ZONES))
late = st.booleans()
completion = st.builds(
    Item,
    kind=st.just("tasks.task.completed"),
    user=st.just(0),
    minute=minutes(),
    usertz=usertz,
    late=late,
    task=st.integers(0, 4),
    due_minutes=st.one_of(st.none(), st.integers(-90, 90), st.just(0)),
)
item = st.one_of(
    st.builds(
        Item,
        kind=st.just("auth.user.updated"),
        user=st.integers(0, 1),
        minute=minutes(),
        usertz=usertz,
        late=late,
        timezone=st.sampled_from(ZONES),
    ),
    st.builds(
        Item,
        kind=st.just("auth.user.logged_in"),
        user=st.integers(0, 1),
        minute=minutes(),
        usertz=usertz,
        late=late,
    ),
    st.builds(
        Item,
        kind=st.just("tasks.task.created"),
        user=st.integers(0, 1),
        minute=minutes(),
        usertz=usertz,
        late=late,
        task=st.integers(0, 4),
        priority=st.sampled_from(["low", "normal", "high"]),
    ),
    st.builds(
        Item,
        kind=st.just("tasks.task.updated"),
        user=st.integers(0, 1),
        minute=minutes(),
        usertz=usertz,
        late=late,
        task=st.integers(0, 4),
        priority=st.sampled_from(["low", "normal", "high"]),
    ),
    completion,
    completion,  # twice as likely: goals need completions to be met or missed
)
goal_change = st.builds(
    GoalChange,
    minute=st.integers(0, DAYS * 1440 - 1),
    daily=st.one_of(st.none(), st.integers(1, 3)),
    weekly=st.one_of(st.none(), st.integers(1, 5)),
)


@dataclass(frozen=True)
class Scenario:
    window: datetime
    items: list[Item]
    goals: list[GoalChange]
    duplicates: list[int]
    order_seed: int
    query_hours: int
    token_tz: str
    group: str


scenarios = st.builds(
    Scenario,
    window=st.sampled_from(WINDOWS),
    items=st.lists(item, max_size=30),
    goals=st.lists(goal_change, max_size=4),
    duplicates=st.lists(st.integers(0, 29), max_size=5),
    order_seed=st.integers(0, 2**16),
    query_hours=st.integers(-3 * 24, 3 * 24),
    token_tz=st.sampled_from(ZONES),
    group=st.sampled_from(["day", "week", "month"]),
)


def event_of(item: Item, when: datetime, user: uuid.UUID, task: uuid.UUID) -> CloudEvent:
    if item.kind == "auth.user.updated":
        return cloud_event(item.kind, user, when, usertz=item.usertz, timezone=item.timezone)
    if item.kind == "auth.user.logged_in":
        return logged_in(user, when, usertz=item.usertz)
    if item.kind == "tasks.task.created":
        return cloud_event(
            item.kind,
            user,
            when,
            usertz=item.usertz,
            task_id=str(task),
            priority=item.priority,
            due_at=None,
            created_at=format_utc(when),
        )
    if item.kind == "tasks.task.updated":
        return cloud_event(
            item.kind,
            user,
            when,
            usertz=item.usertz,
            task_id=str(task),
            changed=["priority"],
            version=2,
            priority=item.priority,
        )
    due = None if item.due_minutes is None else when + timedelta(minutes=item.due_minutes)
    return cloud_event(
        item.kind,
        user,
        when,
        usertz=item.usertz,
        task_id=str(task),
        completed_at=format_utc(when),
        due_at=None if due is None else format_utc(due),
    )


def deliveries(
    scenario: Scenario,
) -> tuple[list[uuid.UUID], list[CloudEvent], list[CloudEvent]]:
    """The users, then the events delivered before and after the goals (shuffled, repeated)."""
    users = [uuid.uuid4(), uuid.uuid4()]
    tasks = [uuid.uuid4() for _ in range(5)]
    early: list[CloudEvent] = []
    later: list[CloudEvent] = []
    events: list[CloudEvent] = []
    for index, item in enumerate(scenario.items):
        when = scenario.window + timedelta(minutes=item.minute, seconds=index % 7)
        event = event_of(item, when, users[item.user], tasks[item.task])
        events.append(event)
        (later if item.late else early).append(event)
    rng = random.Random(scenario.order_seed)
    for index in scenario.duplicates:
        if index < len(events):
            rng.choice([early, later]).append(events[index])
    rng.shuffle(early)
    rng.shuffle(later)
    return users, early, later


def without(body: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key not in keys}


async def get(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], **params: Any
) -> dict[str, Any]:
    response = await client.get(path, params=params, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def months(first: date, last: date) -> list[date]:
    found = []
    month = first.replace(day=1)
    while month <= last:
        found.append(month)
        month = (month + timedelta(days=32)).replace(day=1)
    return found


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios)
async def test_goals_and_longer_reports_agree_with_the_oracle(
    client: httpx.AsyncClient,
    issuer: TestIssuer,
    clock: FixedClock,
    feed: Feed,
    scenario: Scenario,
) -> None:
    users, early, later = deliveries(scenario)
    user = users[0]
    token = issuer.bearer(user, tz=scenario.token_tz, scope=READ_WRITE)
    await feed(early)

    # Each goal is set on the local day of its PUT, in the timezone known at that moment.
    known = Oracle([as_reference(event) for event in early])
    history = GoalHistory()
    for change in sorted(scenario.goals, key=lambda change: change.minute):
        clock.now = scenario.window + timedelta(minutes=change.minute)
        response = await client.put(
            "/analytics/goals",
            json={"daily_tasks": change.daily, "weekly_tasks": change.weekly},
            headers=token,
        )
        assert response.status_code == 200, response.text
        history.set(known.today(user, scenario.token_tz, clock.now), change.daily, change.weekly)

    await feed(later)
    oracle = Oracle([as_reference(event) for event in early + later])
    clock.now = scenario.window + timedelta(days=DAYS, hours=scenario.query_hours)
    today = oracle.today(user, scenario.token_tz, clock.now)
    timezone = oracle.timezone(user, scenario.token_tz)

    assert await get(client, "/analytics/goals", token) == oracle.goals(user, history, today)

    first_day = scenario.window.astimezone(UTC).date() - timedelta(days=2)
    for month in months(first_day, today):
        report = await get(client, "/analytics/reports/monthly", token, month=f"{month:%Y-%m}")
        assert report["timezone"] == timezone
        assert without(report, "generated_at", "user_id", "timezone") == oracle.monthly_report(
            user, month, today
        )

    start = monday_of(first_day) + timedelta(days=scenario.order_seed % 7)
    end = today + timedelta(days=scenario.query_hours % 5)
    ranged = await get(
        client,
        "/analytics/reports",
        token,
        **{"from": start.isoformat(), "to": end.isoformat()},
        group=scenario.group,
    )
    assert without(ranged, "timezone") == oracle.range_report(user, start, end, scenario.group)

    for year in sorted({first_day.year, today.year}):
        body = await get(client, "/analytics/calendar", token, year=year)
        assert without(body, "timezone") == oracle.calendar(user, year)

    weekly = await get(client, "/analytics/reports/weekly", token)
    assert weekly["totals"] == oracle.week(user, monday_of(today))[0]
