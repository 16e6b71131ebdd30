"""API models of the analytics service (docs/spec/analytics.md)."""

from __future__ import annotations

import datetime as dt
import uuid

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


class WeekTotals(BaseModel):
    logins: int
    tasks_created: int
    tasks_completed: int
    active_days: int


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
