"""API models of the analytics service (docs/spec/analytics.md)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from momentum_shared.events import UtcDateTime


class Streak(BaseModel):
    current: int
    longest: int
    last_active_date: dt.date | None


class StreaksPublic(BaseModel):
    user_id: uuid.UUID
    timezone: str
    today: dt.date
    login: Streak
    completion: Streak


class DayReport(BaseModel):
    date: dt.date
    logins: int
    tasks_created: int
    tasks_completed: int


class CompletedByPriority(BaseModel):
    low: int
    normal: int
    high: int


class WeekTotals(BaseModel):
    """Report totals (docs/spec/analytics.md, rules 3 to 6, 10 and 11)."""

    logins: int
    tasks_created: int
    tasks_completed: int
    active_days: int
    completed_on_time: int
    completed_late: int
    completed_undated: int
    completed_by_priority: CompletedByPriority


class WeekStreaks(BaseModel):
    login: Streak
    completion: Streak


class PreviousWeek(BaseModel):
    week: str
    totals: WeekTotals


class WeeklyReport(BaseModel):
    user_id: uuid.UUID
    week: str
    timezone: str
    start_date: dt.date
    end_date: dt.date
    totals: WeekTotals
    days: list[DayReport]
    streaks: WeekStreaks
    previous_week: PreviousWeek
    generated_at: UtcDateTime


class GoalsUpdate(BaseModel):
    """The body of ``PUT /analytics/goals``: the whole document (a missing member is null)."""

    model_config = ConfigDict(extra="forbid")

    daily_tasks: int | None = Field(default=None, ge=1, le=100)
    weekly_tasks: int | None = Field(default=None, ge=1, le=1000)


class DailyGoalStreak(BaseModel):
    current: int
    longest: int
    met_today: bool


class WeeklyGoalStreak(BaseModel):
    current: int
    longest: int
    met_this_week: bool


class GoalsPublic(BaseModel):
    daily_tasks: int | None
    weekly_tasks: int | None
    daily_goal: DailyGoalStreak
    weekly_goal: WeeklyGoalStreak


class PreviousMonth(BaseModel):
    month: str
    totals: WeekTotals


class MonthlyReport(BaseModel):
    user_id: uuid.UUID
    month: str
    timezone: str
    start_date: dt.date
    end_date: dt.date
    totals: WeekTotals
    days: list[DayReport]
    streaks: WeekStreaks
    previous_month: PreviousMonth
    generated_at: UtcDateTime


class Bucket(BaseModel):
    start: dt.date
    end: dt.date
    logins: int
    tasks_created: int
    tasks_completed: int
    active_days: int


class RangeReport(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    from_: dt.date = Field(alias="from")
    to: dt.date
    group: Literal["day", "week", "month"]
    timezone: str
    buckets: list[Bucket]
    totals: WeekTotals


class CalendarDay(BaseModel):
    date: dt.date
    tasks_completed: int
    tasks_created: int
    logins: int
    level: int = Field(ge=0, le=4)


class Calendar(BaseModel):
    year: int
    timezone: str
    days: list[CalendarDay]
