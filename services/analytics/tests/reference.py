"""A pure reference of the counting rules (docs/spec/analytics.md §4), for tests only."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ONE_DAY = timedelta(days=1)


@dataclass(frozen=True)
class Event:
    """The parts of a CloudEvent the rules read."""

    id: str
    type: str
    user_id: uuid.UUID
    time: datetime
    usertz: str | None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class DayCounts:
    logins: int = 0
    any_login: bool = False
    created: set[str] = field(default_factory=set)
    completed: set[str] = field(default_factory=set)
    # Each completed task's first completion that day: (time, event id, completed_at, due_at).
    first_completion: dict[str, tuple[datetime, str, datetime, datetime | None]] = field(
        default_factory=dict
    )

    @property
    def active(self) -> bool:
        return self.any_login or bool(self.created) or bool(self.completed)


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def is_timezone(name: str | None) -> bool:
    if not name or len(name) > 64:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


class Reference:
    """Every answer is recomputed from the whole event set: slow, simple, order-free."""

    def __init__(self, events: list[Event]) -> None:
        unique: dict[str, Event] = {}
        for event in events:
            unique.setdefault(event.id, event)  # rule 2: one id counts once
        self.events = list(unique.values())

    def last_known_timezone(self, user_id: uuid.UUID) -> str | None:
        """Rule 1's fallback: the valid timezone announced last (by time, then id)."""
        announced = [
            event
            for event in self.events
            if event.user_id == user_id
            and event.type in ("auth.user.registered", "auth.user.updated")
            and is_timezone(event.data.get("timezone"))
        ]
        if not announced:
            return None
        latest = max(announced, key=lambda event: (event.time, event.id))
        return str(latest.data["timezone"])

    def local_date(self, event: Event) -> date:
        if event.usertz is not None and is_timezone(event.usertz):
            zone = event.usertz
        else:
            zone = self.last_known_timezone(event.user_id) or "UTC"
        return event.time.astimezone(ZoneInfo(zone)).date()

    def days(self, user_id: uuid.UUID) -> dict[date, DayCounts]:
        days: dict[date, DayCounts] = {}
        for event in self.events:
            if event.user_id != user_id:
                continue
            if event.type == "auth.user.logged_in":
                counts = days.setdefault(self.local_date(event), DayCounts())
                counts.any_login = True
                if event.data.get("method") == "password":
                    counts.logins += 1
            elif event.type == "tasks.task.created":
                days.setdefault(self.local_date(event), DayCounts()).created.add(
                    str(event.data["task_id"])
                )
            elif event.type == "tasks.task.completed":
                counts = days.setdefault(self.local_date(event), DayCounts())
                task = str(event.data["task_id"])
                counts.completed.add(task)
                candidate = (
                    event.time,
                    event.id,
                    parse_time(event.data["completed_at"]),
                    None if event.data.get("due_at") is None else parse_time(event.data["due_at"]),
                )
                known = counts.first_completion.get(task)
                if known is None or candidate[:2] < known[:2]:
                    counts.first_completion[task] = candidate
        return days

    def priority(self, user_id: uuid.UUID, task: str) -> str:
        """Rule 11: the priority of the user's task's latest created event or updated event
        that carries one, else normal."""
        created = [
            event
            for event in self.events
            if event.type in ("tasks.task.created", "tasks.task.updated")
            and event.data.get("priority") is not None
            and event.user_id == user_id
            and str(event.data["task_id"]) == task
        ]
        if not created:
            return "normal"
        return str(max(created, key=lambda event: (event.time, event.id)).data["priority"])

    def totals(
        self, user_id: uuid.UUID, days: dict[date, DayCounts], dates: list[date]
    ) -> dict[str, Any]:
        """Rules 3 to 6, 10 and 11 over ``dates``."""
        totals: dict[str, Any] = {
            "logins": 0,
            "tasks_created": 0,
            "tasks_completed": 0,
            "active_days": 0,
            "completed_on_time": 0,
            "completed_late": 0,
            "completed_undated": 0,
            "completed_by_priority": {"low": 0, "normal": 0, "high": 0},
        }
        for day in dates:
            counts = days.get(day, DayCounts())
            totals["logins"] += counts.logins
            totals["tasks_created"] += len(counts.created)
            totals["tasks_completed"] += len(counts.completed)
            totals["active_days"] += int(counts.active)
            for task, (_, _, completed_at, due_at) in counts.first_completion.items():
                if due_at is None:
                    totals["completed_undated"] += 1
                elif completed_at <= due_at:
                    totals["completed_on_time"] += 1
                else:
                    totals["completed_late"] += 1
                totals["completed_by_priority"][self.priority(user_id, task)] += 1
        return totals

    def streak(self, user_id: uuid.UUID, kind: str, as_of: date) -> dict[str, Any]:
        """Rule 8 by brute force over the set of qualifying days."""
        active = {
            day
            for day, counts in self.days(user_id).items()
            if day <= as_of and (counts.any_login if kind == "login" else bool(counts.completed))
        }
        if not active:
            return {"current": 0, "longest": 0, "last_active_date": None}
        end = as_of if as_of in active else as_of - ONE_DAY
        current = 0
        while end in active:
            current += 1
            end -= ONE_DAY
        longest = run = 0
        previous: date | None = None
        for day in sorted(active):
            run = run + 1 if previous is not None and day == previous + ONE_DAY else 1
            longest = max(longest, run)
            previous = day
        return {"current": current, "longest": longest, "last_active_date": max(active).isoformat()}

    def week(self, user_id: uuid.UUID, monday: date) -> tuple[dict[str, int], list[dict[str, Any]]]:
        days = self.days(user_id)
        dates = [monday + timedelta(days=offset) for offset in range(7)]
        return self.totals(user_id, days, dates), self.day_rows(days, dates)

    @staticmethod
    def day_rows(days: dict[date, DayCounts], dates: list[date]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for day in dates:
            counts = days.get(day, DayCounts())
            rows.append(
                {
                    "date": day.isoformat(),
                    "logins": counts.logins,
                    "tasks_created": len(counts.created),
                    "tasks_completed": len(counts.completed),
                }
            )
        return rows

    def weekly_report(self, user_id: uuid.UUID, monday: date, today: date) -> dict[str, Any]:
        """The report's body without ``generated_at``, ``user_id`` and ``timezone``."""
        totals, rows = self.week(user_id, monday)
        previous_totals, _ = self.week(user_id, monday - timedelta(days=7))
        end = monday + timedelta(days=6)
        as_of = min(end, today)
        year, week, _ = monday.isocalendar()
        p_year, p_week, _ = (monday - timedelta(days=7)).isocalendar()
        return {
            "week": f"{year:04d}-W{week:02d}",
            "start_date": monday.isoformat(),
            "end_date": end.isoformat(),
            "totals": totals,
            "days": rows,
            "streaks": {
                "login": self.streak(user_id, "login", as_of),
                "completion": self.streak(user_id, "completion", as_of),
            },
            "previous_week": {"week": f"{p_year:04d}-W{p_week:02d}", "totals": previous_totals},
        }
