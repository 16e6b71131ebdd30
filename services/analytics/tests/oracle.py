"""The oracle of the second edition: every figure recomputed from the raw events and goals.

It extends the reference of the counting rules (``reference.py``) with docs/spec/analytics.md
§1 (the caller's timezone), §5 (monthly and range reports, the calendar, rules 10 to 12)
and §6 (goals, rules 13 to 15). Everything is brute force over the whole event set, with
no projection, run or incremental state: slow, simple and independent of the service.
"""

from __future__ import annotations

import calendar
import math
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from services.analytics.tests.reference import ONE_DAY, Event, Reference

ONE_WEEK = timedelta(days=7)


@dataclass
class GoalHistory:
    """Rule 13: the goals set on each local day, a later set replacing that day and after."""

    rows: list[tuple[date, int | None, int | None]] = field(default_factory=list)

    def set(self, day: date, daily: int | None, weekly: int | None) -> None:
        self.rows = [row for row in self.rows if row[0] < day] + [(day, daily, weekly)]

    def on(self, day: date) -> tuple[int | None, int | None]:
        """The (daily, weekly) goals in effect on ``day``."""
        found = [row for row in self.rows if row[0] <= day]
        if not found:
            return None, None
        _, daily, weekly = max(found)
        return daily, weekly


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def rule_8(active: set[date], as_of: date, step: timedelta) -> tuple[int, int]:
    """(current, longest) of rule 8 over ``active`` members ``step`` apart, as of ``as_of``."""
    active = {member for member in active if member <= as_of}
    end = as_of if as_of in active else as_of - step
    current = 0
    while end in active:
        current += 1
        end -= step
    longest = run = 0
    previous: date | None = None
    for member in sorted(active):
        run = run + 1 if previous is not None and member == previous + step else 1
        longest = max(longest, run)
        previous = member
    return current, longest


class Oracle(Reference):
    def __init__(self, events: list[Event]) -> None:
        super().__init__(events)

    def timezone(self, user_id: uuid.UUID, token_tz: str) -> str:
        """§1: the last known timezone, else the token's."""
        return self.last_known_timezone(user_id) or token_tz

    def today(self, user_id: uuid.UUID, token_tz: str, now: datetime) -> date:
        return now.astimezone(ZoneInfo(self.timezone(user_id, token_tz))).date()

    def completed_on(self, user_id: uuid.UUID) -> dict[date, int]:
        return {day: len(counts.completed) for day, counts in self.days(user_id).items()}

    # -- goals (rules 13 to 15) --------------------------------------------------------

    def goals(self, user_id: uuid.UUID, history: GoalHistory, today: date) -> dict[str, Any]:
        completed = self.completed_on(user_id)
        daily_goal, weekly_goal = history.on(today)
        daily = {"current": 0, "longest": 0, "met_today": False}
        weekly = {"current": 0, "longest": 0, "met_this_week": False}
        if daily_goal is not None:
            met_days = set()
            for day, count in completed.items():
                goal, _ = history.on(day)
                if goal is not None and count >= goal:
                    met_days.add(day)
            current, longest = rule_8(met_days, today, ONE_DAY)
            daily = {"current": current, "longest": longest, "met_today": today in met_days}
        if weekly_goal is not None:
            running = monday_of(today)
            sums: dict[date, int] = {}
            for day, count in completed.items():
                sums[monday_of(day)] = sums.get(monday_of(day), 0) + count
            met_weeks = set()
            for monday, total in sums.items():
                if monday < running:
                    _, goal = history.on(monday + timedelta(days=6))
                elif monday == running:
                    goal = weekly_goal
                else:
                    continue
                if goal is not None and total >= goal:
                    met_weeks.add(monday)
            current, longest = rule_8(met_weeks, running, ONE_WEEK)
            weekly = {
                "current": current,
                "longest": longest,
                "met_this_week": running in met_weeks,
            }
        return {
            "daily_tasks": daily_goal,
            "weekly_tasks": weekly_goal,
            "daily_goal": daily,
            "weekly_goal": weekly,
        }

    # -- reports (§5) --------------------------------------------------------------------

    def monthly_report(self, user_id: uuid.UUID, first: date, today: date) -> dict[str, Any]:
        """The monthly report without ``generated_at``, ``user_id`` and ``timezone``."""
        days = self.days(user_id)
        end = first.replace(day=calendar.monthrange(first.year, first.month)[1])
        dates = [first + timedelta(days=offset) for offset in range((end - first).days + 1)]
        previous_first = (first - ONE_DAY).replace(day=1)
        previous = [
            previous_first + timedelta(days=offset)
            for offset in range((first - previous_first).days)
        ]
        as_of = min(end, today)
        return {
            "month": f"{first.year:04d}-{first.month:02d}",
            "start_date": first.isoformat(),
            "end_date": end.isoformat(),
            "totals": self.totals(user_id, days, dates),
            "days": self.day_rows(days, dates),
            "streaks": {
                "login": self.streak(user_id, "login", as_of),
                "completion": self.streak(user_id, "completion", as_of),
            },
            "previous_month": {
                "month": f"{previous_first.year:04d}-{previous_first.month:02d}",
                "totals": self.totals(user_id, days, previous),
            },
        }

    def range_report(
        self, user_id: uuid.UUID, start: date, end: date, group: str
    ) -> dict[str, Any]:
        """The range report without ``timezone``: buckets by walking the days one by one."""
        days = self.days(user_id)
        buckets: list[dict[str, Any]] = []
        day = start
        while day <= end:
            key = (
                day if group == "day" else monday_of(day) if group == "week" else day.replace(day=1)
            )
            if not buckets or buckets[-1]["key"] != key:
                buckets.append({"key": key, "dates": []})
            buckets[-1]["dates"].append(day)
            day += ONE_DAY
        shaped = []
        for bucket in buckets:
            totals = self.totals(user_id, days, bucket["dates"])
            shaped.append(
                {
                    "start": bucket["dates"][0].isoformat(),
                    "end": bucket["dates"][-1].isoformat(),
                    "logins": totals["logins"],
                    "tasks_created": totals["tasks_created"],
                    "tasks_completed": totals["tasks_completed"],
                    "active_days": totals["active_days"],
                }
            )
        every = [start + timedelta(days=offset) for offset in range((end - start).days + 1)]
        return {
            "from": start.isoformat(),
            "to": end.isoformat(),
            "group": group,
            "buckets": shaped,
            "totals": self.totals(user_id, days, every),
        }

    def calendar(self, user_id: uuid.UUID, year: int) -> dict[str, Any]:
        """Rule 12, straight from its words: nearest-rank quartiles of the non-zero days."""
        days = self.days(user_id)
        first = date(year, 1, 1)
        dates = [first + timedelta(days=offset) for offset in range(366)]
        dates = [day for day in dates if day.year == year]
        values = sorted(
            len(days[day].completed) for day in dates if day in days and days[day].completed
        )
        n = len(values)
        quartiles = [values[math.ceil(k * n / 4) - 1] for k in (1, 2, 3)] if n else []
        entries = []
        for day in dates:
            counts = days.get(day)
            completed = len(counts.completed) if counts else 0
            if completed == 0:
                level = 0
            else:
                level = 1 + sum(1 for quartile in quartiles if completed > quartile)
            entries.append(
                {
                    "date": day.isoformat(),
                    "tasks_completed": completed,
                    "tasks_created": len(counts.created) if counts else 0,
                    "logins": counts.logins if counts else 0,
                    "level": level,
                }
            )
        return {"year": year, "days": entries}
