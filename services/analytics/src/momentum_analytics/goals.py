"""Goals (docs/spec/analytics.md §6): setting them from today on, and their streaks."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

from momentum_analytics.models import DAILY_GOAL, WEEKLY_GOAL
from momentum_analytics.repository import AnalyticsRepository, Run
from momentum_analytics.schemas import (
    DailyGoalStreak,
    GoalsPublic,
    GoalsUpdate,
    WeeklyGoalStreak,
)
from momentum_analytics.service import (
    ONE_WEEK,
    caller_timezone,
    monday_of,
    refresh_goal_days,
    streak_as_of,
    today_in,
)


async def set_goals(
    repo: AnalyticsRepository,
    *,
    user_id: uuid.UUID,
    token_timezone: str,
    goals: GoalsUpdate,
    now: datetime,
) -> GoalsPublic:
    """Set the goals from the caller's today on; earlier days keep the goals they had.

    The user's row is locked first, as a batch of events does, so a PUT and a batch touching
    the same user run one after the other.
    """
    await repo.lock_users([user_id])
    timezone = await caller_timezone(repo, user_id, token_timezone)
    today = today_in(now, timezone)
    await repo.set_goal(
        user_id,
        today,
        daily_tasks=goals.daily_tasks,
        weekly_tasks=goals.weekly_tasks,
        at=now,
    )
    # Only today and any day after it change goal: those with completions, and today's week.
    days = {today, *await repo.active_days_from(user_id, monday_of(today))}
    await refresh_goal_days(repo, {user_id: days})
    return await goals_document(repo, user_id=user_id, today=today)


async def get_goals(
    repo: AnalyticsRepository, *, user_id: uuid.UUID, token_timezone: str, now: datetime
) -> GoalsPublic:
    timezone = await caller_timezone(repo, user_id, token_timezone)
    return await goals_document(repo, user_id=user_id, today=today_in(now, timezone))


def weekly_streak(previous: Run | None, this_monday: date, met: bool) -> WeeklyGoalStreak:
    """Rule 8 over ISO weeks as of the running week, which counts only once it is met.

    ``previous`` is the weekly-goal run that starts last on or before the week before; the
    running week's own state is ``met`` (computed live against today's goal).
    """
    last = this_monday - ONE_WEEK
    part = 0  # the length of the run that ends with last week
    longest = 0
    if previous is not None:
        if previous.end >= last:
            part = (last - previous.start) // ONE_WEEK + 1
            longest = max(previous.longest_before, part)
        else:
            longest = max(previous.longest_before, previous.length)
    if met:
        return WeeklyGoalStreak(
            current=part + 1, longest=max(longest, part + 1), met_this_week=True
        )
    return WeeklyGoalStreak(current=part, longest=longest, met_this_week=False)


async def goals_document(
    repo: AnalyticsRepository, *, user_id: uuid.UUID, today: date
) -> GoalsPublic:
    """The goals in effect today and their streaks as of today (a null goal: all 0)."""
    goal = await repo.goal_at(user_id, today)
    daily_tasks = None if goal is None else goal.daily_tasks
    weekly_tasks = None if goal is None else goal.weekly_tasks
    daily = DailyGoalStreak(current=0, longest=0, met_today=False)
    weekly = WeeklyGoalStreak(current=0, longest=0, met_this_week=False)
    if daily_tasks is not None:
        run = await repo.run_at_or_before(user_id, DAILY_GOAL, today)
        streak = streak_as_of(run, today)
        daily = DailyGoalStreak(
            current=streak.current,
            longest=streak.longest,
            met_today=streak.last_active_date == today,
        )
    if weekly_tasks is not None:
        monday = monday_of(today)
        rows = await repo.days(user_id, monday, monday + timedelta(days=6))
        met = sum(row.tasks_completed for row in rows) >= weekly_tasks
        previous = await repo.run_at_or_before(user_id, WEEKLY_GOAL, monday - ONE_WEEK)
        weekly = weekly_streak(previous, monday, met)
    return GoalsPublic(
        daily_tasks=daily_tasks,
        weekly_tasks=weekly_tasks,
        daily_goal=daily,
        weekly_goal=weekly,
    )
