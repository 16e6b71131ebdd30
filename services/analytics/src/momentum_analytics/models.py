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
# Kinds of streaks (docs/spec/analytics.md, rule 7).
LOGIN = "login"
COMPLETION = "completion"


MODELS = registry()


class AnalyticsBase(SQLModel, registry=MODELS):
    """Base of the analytics tables: their own metadata."""


class ProcessedEvent(AnalyticsBase, table=True):
    """The inbox: an event id is applied once, in the same transaction as its projection."""

    __tablename__ = "processed_events"

    event_id: str = Field(primary_key=True, max_length=200)
    event_type: str = Field(max_length=200)
    processed_at: datetime = Field(sa_type=UtcDateTime, default_factory=utcnow)


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


class StreakRun(AnalyticsBase, table=True):
    """A maximal run of consecutive login (or completion) days.

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
