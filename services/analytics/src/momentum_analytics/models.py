"""Tables of analytics: the inbox, per-day projections, streak runs and dead letters."""

from __future__ import annotations

import uuid
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from momentum_shared.db import UtcDateTime
from momentum_shared.events import utcnow

# Kinds of task facts kept per day (distinct task ids per day and kind).
CREATED = "created"
COMPLETED = "completed"
# Kinds of streaks (docs/spec/analytics.md, rules 7 and 15).
LOGIN = "login"
COMPLETION = "completion"
DAILY_GOAL = "daily_goal"  # runs of days that met their daily goal
WEEKLY_GOAL = "weekly_goal"  # runs of ISO weeks (by their Mondays) that met their weekly goal
# How a counted completion is classified (docs/spec/analytics.md, rule 10).
ON_TIME = "on_time"
LATE = "late"
UNDATED = "undated"
PRIORITIES = ("low", "normal", "high")
DEFAULT_PRIORITY = "normal"


MODELS = registry()


class AnalyticsBase(SQLModel, registry=MODELS):
    """Base of the analytics tables: their own metadata."""


class ProcessedEvent(AnalyticsBase, table=True):
    """The inbox: an event id is applied once, in the same transaction as its projection."""

    __tablename__ = "processed_events"

    event_id: str = Field(primary_key=True, max_length=200)
    event_type: str = Field(max_length=200)
    # Indexed for the prune job, which forgets ids older than the inbox retention.
    processed_at: datetime = Field(sa_type=UtcDateTime, default_factory=utcnow, index=True)


class AnalyticsUser(AnalyticsBase, table=True):
    """What analytics knows about a user: the last known timezone (rule 1).

    "Last known" is the timezone of the registered/updated event with the latest
    (``time``, ``id``), so the answer does not depend on delivery order. The row is
    also the per-user lock that serialises concurrent batches touching one user.
    """

    __tablename__ = "analytics_users"

    user_id: uuid.UUID = Field(primary_key=True)
    timezone: str | None = Field(default=None, max_length=64)
    timezone_time: datetime | None = Field(default=None, sa_type=UtcDateTime)
    timezone_event_id: str | None = Field(default=None, max_length=200)


class DailyActivity(AnalyticsBase, table=True):
    """One user's counts on one local day: what every report reads (O(days asked))."""

    __tablename__ = "daily_activity"

    user_id: uuid.UUID = Field(primary_key=True)
    local_date: date = Field(primary_key=True)
    logins: int = 0  # auth.user.logged_in with method=password (rule 3)
    login_events: int = 0  # logins of either method: > 0 makes a login day (rule 7)
    tasks_created: int = 0  # distinct task ids created (rule 4)
    tasks_completed: int = 0  # distinct task ids completed (rule 5)
    # The day's completed tasks classified (rules 10 and 11): each triple sums to
    # tasks_completed. Recomputed from ``task_completions`` for every day a batch touches.
    completed_on_time: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    completed_late: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    completed_undated: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    completed_low: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    completed_normal: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    completed_high: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class DailyTask(AnalyticsBase, table=True):
    """A task id created or completed on a local day; ``events`` counts the events behind it.

    Keeping the ids makes duplicates and re-completions exact; the count lets an event
    whose day moves (see ``FloatingEvent``) take back exactly its own contribution.
    """

    __tablename__ = "daily_tasks"

    user_id: uuid.UUID = Field(primary_key=True)
    local_date: date = Field(primary_key=True)
    kind: str = Field(primary_key=True, max_length=16)
    task_id: uuid.UUID = Field(primary_key=True)
    events: int = 0


class FloatingEvent(AnalyticsBase, table=True):
    """An event without a valid ``usertz``: its day follows the user's last known timezone.

    When a later-dated timezone becomes known, these events are moved to their new day.
    """

    __tablename__ = "floating_events"

    event_id: str = Field(primary_key=True, max_length=200)
    user_id: uuid.UUID = Field(index=True)
    kind: str = Field(max_length=16)  # login_password, login_refresh, created, completed
    task_id: uuid.UUID | None = None
    occurred_at: datetime = Field(sa_type=UtcDateTime)
    local_date: date


class TaskCompletion(AnalyticsBase, table=True):
    """One ``tasks.task.completed`` event on its local day: what classifies the day's tasks.

    A day's task is classified by its first completion that day (``occurred_at``, then
    ``event_id``); keeping every completion makes late and moved events exact.
    """

    __tablename__ = "task_completions"
    __table_args__ = (
        sa.Index("ix_task_completions_user_day", "user_id", "local_date"),
        sa.Index("ix_task_completions_user_task", "user_id", "task_id"),
    )

    event_id: str = Field(primary_key=True, max_length=200)
    user_id: uuid.UUID
    task_id: uuid.UUID
    local_date: date
    occurred_at: datetime = Field(sa_type=UtcDateTime)
    completed_at: datetime = Field(sa_type=UtcDateTime)
    due_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class TaskPriority(AnalyticsBase, table=True):
    """A task's priority as last known to analytics: that of the latest ``tasks.task.created``
    or ``tasks.task.updated`` carrying one."""

    __tablename__ = "task_priorities"

    user_id: uuid.UUID = Field(primary_key=True)
    task_id: uuid.UUID = Field(primary_key=True)
    priority: str = Field(max_length=16)
    priority_time: datetime = Field(sa_type=UtcDateTime)
    priority_event_id: str = Field(max_length=200)


class Goal(AnalyticsBase, table=True):
    """The goals a user set, from ``effective_date`` (a local day) until the next row.

    Not a projection: a rebuild keeps it, and the goal runs are recomputed from it.
    """

    __tablename__ = "goals"

    user_id: uuid.UUID = Field(primary_key=True)
    effective_date: date = Field(primary_key=True)
    daily_tasks: int | None = None
    weekly_tasks: int | None = None
    set_at: datetime = Field(sa_type=UtcDateTime)


class StreakRun(AnalyticsBase, table=True):
    """A maximal run of consecutive login (or completion, or goal-met) days.

    Weekly goal runs hold the Mondays of their first and last weeks, and count weeks.

    ``longest_before`` is the longest run that ends before this one starts, so the streak
    as of any date is answered from the single run starting on or before it.
    """

    __tablename__ = "streak_runs"

    user_id: uuid.UUID = Field(primary_key=True)
    kind: str = Field(primary_key=True, max_length=16)
    start_date: date = Field(primary_key=True)
    end_date: date
    length: int
    longest_before: int = 0


class DeadLetter(AnalyticsBase, table=True):
    """A message that kept failing; it was terminated so it never blocks its stream."""

    __tablename__ = "dead_letters"
    __table_args__ = (sa.UniqueConstraint("stream", "stream_sequence"),)

    id: int | None = Field(default=None, primary_key=True)
    stream: str = Field(max_length=64)
    stream_sequence: int = Field(sa_type=sa.BigInteger)
    subject: str = Field(max_length=200)
    event_id: str | None = Field(default=None, max_length=200)
    deliveries: int
    payload: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    error: str = Field(max_length=1000)
    failed_at: datetime = Field(sa_type=UtcDateTime, default_factory=utcnow)
