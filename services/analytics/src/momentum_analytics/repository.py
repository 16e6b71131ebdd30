"""Every query of analytics (docs/spec/analytics.md); each on user data is filtered by user id."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from momentum_analytics.models import (
    COMPLETION,
    LOGIN,
    AnalyticsBase,
    AnalyticsUser,
    DailyActivity,
    DailyTask,
    DeadLetter,
    FloatingEvent,
    Goal,
    ProcessedEvent,
    StreakRun,
    TaskCompletion,
    TaskPriority,
)
from momentum_shared.db import Repository


def _table(model: type[AnalyticsBase]) -> sa.Table:
    return AnalyticsBase.metadata.tables[str(model.__tablename__)]


_inbox = _table(ProcessedEvent)
_users = _table(AnalyticsUser)
_daily = _table(DailyActivity)
_tasks = _table(DailyTask)
_floating = _table(FloatingEvent)
_runs = _table(StreakRun)
_dead = _table(DeadLetter)
_completions = _table(TaskCompletion)
_priorities = _table(TaskPriority)
_goals = _table(Goal)

# Projection tables a rebuild empties (the inbox included; dead letters and goals, which
# users set rather than events, are kept).
PROJECTION_TABLES = (
    _inbox,
    _users,
    _daily,
    _tasks,
    _floating,
    _runs,
    _completions,
    _priorities,
)
# The classified completion counts of a day (rules 10 and 11).
CLASSIFIED = (
    "completed_on_time",
    "completed_late",
    "completed_undated",
    "completed_low",
    "completed_normal",
    "completed_high",
)


# Keys of the set-based writes of a batch.
DayKey = tuple[uuid.UUID, date]  # (user_id, local_date)
TaskKey = tuple[uuid.UUID, date, str, uuid.UUID]  # (user_id, local_date, kind, task_id)
RunKey = tuple[uuid.UUID, str]  # (user_id, kind)


@dataclass(frozen=True, slots=True)
class DayDelta:
    logins: int = 0
    login_events: int = 0
    tasks_created: int = 0
    tasks_completed: int = 0


def _storable(text: str) -> str:
    return text.replace("\x00", "\ufffd")


@dataclass(frozen=True, slots=True)
class UserTimezone:
    timezone: str | None
    time: datetime | None
    event_id: str | None


@dataclass(frozen=True, slots=True)
class Run:
    start: date
    end: date
    length: int
    longest_before: int


@dataclass(frozen=True, slots=True)
class Day:
    local_date: date
    logins: int
    login_events: int
    tasks_created: int
    tasks_completed: int
    completed_on_time: int = 0
    completed_late: int = 0
    completed_undated: int = 0
    completed_low: int = 0
    completed_normal: int = 0
    completed_high: int = 0


@dataclass(frozen=True, slots=True)
class Completion:
    user_id: uuid.UUID
    task_id: uuid.UUID
    local_date: date
    event_id: str
    occurred_at: datetime
    completed_at: datetime
    due_at: datetime | None


@dataclass(frozen=True, slots=True)
class KnownPriority:
    priority: str
    time: datetime
    event_id: str


@dataclass(frozen=True, slots=True)
class GoalRow:
    effective_date: date
    daily_tasks: int | None
    weekly_tasks: int | None


@dataclass(frozen=True, slots=True)
class Floating:
    event_id: str
    kind: str
    task_id: uuid.UUID | None
    occurred_at: datetime
    local_date: date


@dataclass(frozen=True, slots=True)
class DeadLetterRow:
    id: int
    stream: str
    stream_sequence: int
    subject: str
    event_id: str | None
    deliveries: int
    payload: bytes
    error: str
    failed_at: datetime


# The read path's statements are built once: their cache keys are then computed once too.
_DAYS = (
    sa.select(
        _daily.c.local_date,
        _daily.c.logins,
        _daily.c.login_events,
        _daily.c.tasks_created,
        _daily.c.tasks_completed,
        *(_daily.c[name] for name in CLASSIFIED),
    )
    .where(
        (_daily.c.user_id == sa.bindparam("user_id", type_=sa.Uuid))
        & (_daily.c.local_date >= sa.bindparam("start", type_=sa.Date))
        & (_daily.c.local_date <= sa.bindparam("end", type_=sa.Date))
    )
    .order_by(_daily.c.local_date)
)


# A day counts as active (rule 6) for any login, creation or completion.
_ACTIVE = sa.case(
    (
        (_daily.c.login_events > 0) | (_daily.c.tasks_created > 0) | (_daily.c.tasks_completed > 0),
        1,
    ),
    else_=0,
)


@functools.lru_cache(maxsize=4)
def _grouped_days(dialect: str, group: str) -> sa.Select[Any]:
    """The sums of a user's day rows per ISO week or per month between two dates, with each
    group's first date: a year's range report reads at most 54 rows, not 366. (A week that
    spans New Year may come as two groups on SQLite, whose %W restarts each year; the caller
    adds groups up by the bucket their first date falls in.)"""
    day = _daily.c.local_date
    if dialect == "postgresql":
        key = sa.func.to_char(day, "IYYY-IW" if group == "week" else "YYYY-MM")
    else:
        key = sa.func.strftime("%Y-%W" if group == "week" else "%Y-%m", day)
    return (
        sa.select(
            sa.func.min(day).label("local_date"),
            *(
                sa.func.sum(_daily.c[name]).label(name)
                for name in ("logins", "login_events", "tasks_created", "tasks_completed")
            ),
            *(sa.func.sum(_daily.c[name]).label(name) for name in CLASSIFIED),
            sa.func.sum(_ACTIVE).label("active_days"),
        )
        .where(
            (_daily.c.user_id == sa.bindparam("user_id", type_=sa.Uuid))
            & (day >= sa.bindparam("start", type_=sa.Date))
            & (day <= sa.bindparam("end", type_=sa.Date))
        )
        .group_by(key)
        .order_by(sa.func.min(day))
    )


def _latest_runs(kinds: tuple[str, ...]) -> sa.CompoundSelect[Any]:
    seeks = [
        sa.select(
            sa.literal(kind, sa.String).label("kind"),
            _runs.c.start_date,
            _runs.c.end_date,
            _runs.c.length,
            _runs.c.longest_before,
        )
        .where(
            (_runs.c.user_id == sa.bindparam("user_id", type_=sa.Uuid))
            & (_runs.c.kind == kind)
            & (_runs.c.start_date <= sa.bindparam("day", type_=sa.Date))
        )
        .order_by(_runs.c.start_date.desc())
        .limit(1)
        .subquery()
        for kind in kinds
    ]
    return sa.union_all(*(sa.select(*seek.c) for seek in seeks))


_LATEST_RUNS: dict[tuple[str, ...], sa.CompoundSelect[Any]] = {
    (LOGIN, COMPLETION): _latest_runs((LOGIN, COMPLETION))
}
_TIMEZONE = sa.select(_users.c.timezone).where(
    _users.c.user_id == sa.bindparam("user_id", type_=sa.Uuid)
)
# The goals in effect on a day: the row set last on or before it.
_GOAL_AT = (
    sa.select(_goals.c.effective_date, _goals.c.daily_tasks, _goals.c.weekly_tasks)
    .where(
        (_goals.c.user_id == sa.bindparam("user_id", type_=sa.Uuid))
        & (_goals.c.effective_date <= sa.bindparam("day", type_=sa.Date))
    )
    .order_by(_goals.c.effective_date.desc())
    .limit(1)
)


# -- PostgreSQL's batch statements ----------------------------------------------------------
# On PostgreSQL a batch's rows go as one array per column and the statement unnests them:
# one fixed text (prepared once per connection, whatever the batch size), a handful of
# parameters that asyncpg encodes in C, and no per-row parameter processing. SQLite keeps
# SQLAlchemy Core's executemany (its driver binds each row in C already).


def _unnest(columns: Sequence[tuple[str, str]]) -> str:
    """``unnest(CAST(:a AS uuid[]), …) AS rows(a, …)`` for ``(name, PostgreSQL type)``."""
    arrays = ", ".join(f"CAST(:{name} AS {kind}[])" for name, kind in columns)
    return f"unnest({arrays}) AS rows({', '.join(name for name, _ in columns)})"


def _unnest_insert(table: sa.Table, columns: Sequence[tuple[str, str]], rest: str) -> sa.TextClause:
    names = ", ".join(name for name, _ in columns)
    return sa.text(f"INSERT INTO {table.name} ({names}) SELECT * FROM {_unnest(columns)} {rest}")


_PG_INBOX = sa.text(
    f"INSERT INTO {_inbox.name} (event_id, event_type, processed_at)"
    " SELECT event_id, event_type, CAST(:at AS timestamptz)"
    f" FROM {_unnest([('event_id', 'text'), ('event_type', 'text')])}"
    " ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
)
_PG_ADD_USERS = _unnest_insert(_users, [("user_id", "uuid")], "ON CONFLICT (user_id) DO NOTHING")
_PG_LOCK_USERS = sa.text(
    "SELECT user_id, timezone, timezone_time, timezone_event_id"
    f" FROM {_users.name} WHERE user_id = ANY(CAST(:user_id AS uuid[]))"
    " ORDER BY user_id FOR UPDATE"
)
_DAY_COUNTS = ("logins", "login_events", "tasks_created", "tasks_completed")
_PG_BUMP_DAYS = _unnest_insert(
    _daily,
    [("user_id", "uuid"), ("local_date", "date"), *((name, "integer") for name in _DAY_COUNTS)],
    "ON CONFLICT (user_id, local_date) DO UPDATE SET "
    + ", ".join(f"{name} = {_daily.name}.{name} + excluded.{name}" for name in _DAY_COUNTS)
    + " RETURNING user_id, local_date, login_events, tasks_completed",
)
_TASK_KEY = [("user_id", "uuid"), ("local_date", "date"), ("kind", "text"), ("task_id", "uuid")]
_PG_BUMP_TASKS = _unnest_insert(
    _tasks,
    [*_TASK_KEY, ("events", "integer")],
    "ON CONFLICT (user_id, local_date, kind, task_id)"
    f" DO UPDATE SET events = {_tasks.name}.events + excluded.events"
    " RETURNING user_id, local_date, kind, task_id, events",
)
_PG_DELETE_TASKS = sa.text(
    f"DELETE FROM {_tasks.name} AS t USING {_unnest(_TASK_KEY)}"
    " WHERE t.user_id = rows.user_id AND t.local_date = rows.local_date"
    " AND t.kind = rows.kind AND t.task_id = rows.task_id"
)
_PG_ADD_COMPLETIONS = _unnest_insert(
    _completions,
    [
        ("event_id", "text"),
        ("user_id", "uuid"),
        ("task_id", "uuid"),
        ("local_date", "date"),
        ("occurred_at", "timestamptz"),
        ("completed_at", "timestamptz"),
        ("due_at", "timestamptz"),
    ],
    "",
)
_PG_LEARN_PRIORITIES = _unnest_insert(
    _priorities,
    [
        ("user_id", "uuid"),
        ("task_id", "uuid"),
        ("priority", "text"),
        ("priority_time", "timestamptz"),
        ("priority_event_id", "text"),
    ],
    "ON CONFLICT (user_id, task_id) DO UPDATE SET priority = excluded.priority,"
    " priority_time = excluded.priority_time, priority_event_id = excluded.priority_event_id"
    f" WHERE (excluded.priority_time, excluded.priority_event_id)"
    f" > ({_priorities.name}.priority_time, {_priorities.name}.priority_event_id)"
    " RETURNING user_id, task_id",
)
_PG_SET_CLASSIFIED = sa.text(
    f"UPDATE {_daily.name} AS d SET "
    + ", ".join(f"{name} = rows.{name}" for name in CLASSIFIED)
    + " FROM "
    + _unnest([("user_id", "uuid"), ("local_date", "date"), *((n, "integer") for n in CLASSIFIED)])
    + " WHERE d.user_id = rows.user_id AND d.local_date = rows.local_date"
)
# The completions of the asked days and of every day on which an asked task was completed,
# each with its task's known priority: index seeks from the keys, whatever the history.
_PG_COMPLETIONS_TO_CLASSIFY = sa.text(
    "WITH days AS ("
    f" SELECT user_id, local_date FROM {_unnest([('user_id', 'uuid'), ('local_date', 'date')])}"
    " UNION SELECT c.user_id, c.local_date"
    " FROM unnest(CAST(:task_user_id AS uuid[]), CAST(:task_id AS uuid[]))"
    " AS tasks(user_id, task_id)"
    f" JOIN {_completions.name} AS c"
    " ON c.user_id = tasks.user_id AND c.task_id = tasks.task_id)"
    " SELECT c.user_id, c.task_id, c.local_date, c.event_id, c.occurred_at, c.completed_at,"
    " c.due_at, p.priority"
    f" FROM days JOIN {_completions.name} AS c"
    " ON c.user_id = days.user_id AND c.local_date = days.local_date"
    f" LEFT JOIN {_priorities.name} AS p ON p.user_id = c.user_id AND p.task_id = c.task_id"
)
_RUN_CUTS = [("user_id", "uuid"), ("kind", "text"), ("cut", "date")]
_PG_RUNS_ENDING_FROM = sa.text(
    "SELECT r.user_id, r.kind, r.start_date, r.end_date, r.length, r.longest_before"
    f" FROM {_unnest(_RUN_CUTS)} JOIN {_runs.name} AS r"
    " ON r.user_id = rows.user_id AND r.kind = rows.kind AND r.end_date >= rows.cut"
    " ORDER BY r.user_id, r.kind, r.start_date"
)
_PG_LONGEST_ENDING_BEFORE = sa.text(
    "SELECT r.user_id, r.kind, max(r.length) AS longest"
    f" FROM {_unnest(_RUN_CUTS)} JOIN {_runs.name} AS r"
    " ON r.user_id = rows.user_id AND r.kind = rows.kind AND r.end_date < rows.cut"
    " GROUP BY r.user_id, r.kind"
)
_PG_DELETE_RUNS = sa.text(
    f"DELETE FROM {_runs.name} AS r"
    f" USING {_unnest([('user_id', 'uuid'), ('kind', 'text'), ('start_date', 'date')])}"
    " WHERE r.user_id = rows.user_id AND r.kind = rows.kind AND r.start_date = rows.start_date"
)
_PG_ADD_RUNS = _unnest_insert(
    _runs,
    [
        ("user_id", "uuid"),
        ("kind", "text"),
        ("start_date", "date"),
        ("end_date", "date"),
        ("length", "integer"),
        ("longest_before", "integer"),
    ],
    "",
)

_PG_GOALS_OF = sa.text(
    "SELECT user_id, effective_date, daily_tasks, weekly_tasks"
    f" FROM {_goals.name} WHERE user_id = ANY(CAST(:user_ids AS uuid[]))"
    " ORDER BY user_id, effective_date"
)


def _columns(rows: Iterable[Sequence[Any]], names: Sequence[str]) -> dict[str, list[Any]]:
    """Rows as one list per column, named for the statement's array parameters."""
    columns: list[list[Any]] = [[] for _ in names]
    for row in rows:
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    return dict(zip(names, columns, strict=True))


def _classified(rows: Iterable[Any]) -> list[tuple[Completion, str | None]]:
    """Rows of completions joined with their task's known priority, as the classifier takes them."""
    return [
        (
            Completion(
                row.user_id,
                row.task_id,
                row.local_date,
                row.event_id,
                row.occurred_at,
                row.completed_at,
                row.due_at,
            ),
            row.priority,
        )
        for row in rows
    ]


# -- SQLite's batch statements --------------------------------------------------------------
# Built once (building an upsert is a good part of its cost per batch); the keys they return
# come back as SQLite stores them (a uuid's hex, a date's ISO text) and are matched to the
# batch's own keys, instead of each being parsed back into a UUID and a date.


def _stored(column: sa.Column[Any]) -> sa.Label[str]:
    return sa.type_coerce(column, sa.String).label(column.name)


_LITE_INBOX = (
    sqlite.insert(_inbox)
    .on_conflict_do_nothing(index_elements=["event_id"])
    .returning(_inbox.c.event_id)
)
_LITE_ADD_USERS = sqlite.insert(_users).on_conflict_do_nothing(index_elements=["user_id"])
_LITE_LOCK_USERS = (
    sa.select(
        _users.c.user_id, _users.c.timezone, _users.c.timezone_time, _users.c.timezone_event_id
    )
    .where(_users.c.user_id.in_(sa.bindparam("user_ids", expanding=True, type_=sa.Uuid)))
    .order_by(_users.c.user_id)
)
_lite_days = sqlite.insert(_daily)
_LITE_BUMP_DAYS = _lite_days.on_conflict_do_update(
    index_elements=["user_id", "local_date"],
    set_={name: _daily.c[name] + _lite_days.excluded[name] for name in _DAY_COUNTS},
).returning(
    _stored(_daily.c.user_id),
    _stored(_daily.c.local_date),
    _daily.c.login_events,
    _daily.c.tasks_completed,
)
_lite_tasks = sqlite.insert(_tasks)
_LITE_BUMP_TASKS = _lite_tasks.on_conflict_do_update(
    index_elements=["user_id", "local_date", "kind", "task_id"],
    set_={"events": _tasks.c.events + _lite_tasks.excluded.events},
).returning(
    _stored(_tasks.c.user_id),
    _stored(_tasks.c.local_date),
    _tasks.c.kind,
    _stored(_tasks.c.task_id),
    _tasks.c.events,
)
_lite_priorities = sqlite.insert(_priorities)
_LITE_LEARN_PRIORITIES = _lite_priorities.on_conflict_do_update(
    index_elements=["user_id", "task_id"],
    set_={
        "priority": _lite_priorities.excluded.priority,
        "priority_time": _lite_priorities.excluded.priority_time,
        "priority_event_id": _lite_priorities.excluded.priority_event_id,
    },
    where=(_lite_priorities.excluded.priority_time > _priorities.c.priority_time)
    | (
        (_lite_priorities.excluded.priority_time == _priorities.c.priority_time)
        & (_lite_priorities.excluded.priority_event_id > _priorities.c.priority_event_id)
    ),
).returning(_stored(_priorities.c.user_id), _stored(_priorities.c.task_id))
_LITE_GOALS_OF = (
    sa.select(
        _goals.c.user_id, _goals.c.effective_date, _goals.c.daily_tasks, _goals.c.weekly_tasks
    )
    .where(_goals.c.user_id.in_(sa.bindparam("user_ids", expanding=True, type_=sa.Uuid)))
    .order_by(_goals.c.user_id, _goals.c.effective_date)
)
_LITE_SET_CLASSIFIED = (
    sa.update(_daily)
    .where(
        (_daily.c.user_id == sa.bindparam("b_user_id"))
        & (_daily.c.local_date == sa.bindparam("b_local_date"))
    )
    .values({name: sa.bindparam(f"b_{name}") for name in CLASSIFIED})
)


class AnalyticsRepository(Repository):
    """Queries inside the caller's unit of work: it executes and flushes, never commits."""

    __slots__ = ()

    # -- inbox ---------------------------------------------------------------------------

    async def record_processed_many(
        self, events: Sequence[tuple[str, str]], at: datetime
    ) -> set[str]:
        """Insert ``(event_id, event_type)`` rows into the inbox in one statement; the ids
        that were new (the others were already processed). Ids must be distinct.

        On PostgreSQL a concurrent insert of the same id waits for the other transaction
        and then does nothing, so exactly one of two replicas applies the event.
        """
        if not events:
            return set()
        if self.postgres:
            arrays = _columns(events, ("event_id", "event_type"))
            return set((await self.execute_arrays(_PG_INBOX, {**arrays, "at": at})).scalars())
        rows = [
            {"event_id": event_id, "event_type": event_type, "processed_at": at}
            for event_id, event_type in events
        ]
        return set((await self.execute_many(_LITE_INBOX, rows)).scalars())

    async def execute_many(
        self, statement: sa.Executable, rows: Sequence[Mapping[str, Any]]
    ) -> sa.CursorResult[Any]:
        """One statement for many rows: compiled (and cached) once, whatever the row count.

        An ``INSERT … RETURNING`` goes out as one multi-row statement per page of rows
        (SQLAlchemy's "insertmanyvalues"), not a statement per row.
        """
        connection = await self.session.connection()
        result: sa.CursorResult[Any] = await connection.execute(statement, list(rows))
        return result

    async def execute_arrays(
        self, statement: sa.TextClause, arrays: Mapping[str, Any]
    ) -> sa.CursorResult[Any]:
        """One of the PostgreSQL batch statements above, its rows given as column arrays."""
        connection = await self.session.connection()
        result: sa.CursorResult[Any] = await connection.execute(statement, dict(arrays))
        return result

    # -- users ---------------------------------------------------------------------------

    async def lock_users(self, user_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, UserTimezone]:
        """Create missing user rows and lock them (ascending ids, so batches never deadlock)."""
        ordered = sorted(set(user_ids))
        if not ordered:
            return {}
        if self.postgres:
            await self.execute_arrays(_PG_ADD_USERS, {"user_id": ordered})
            locked = await self.execute_arrays(_PG_LOCK_USERS, {"user_id": ordered})
            return {
                row.user_id: UserTimezone(row.timezone, row.timezone_time, row.timezone_event_id)
                for row in locked
            }
        # SQLite has no row locks: its single writer serialises batches.
        await self.execute_many(_LITE_ADD_USERS, [{"user_id": user_id} for user_id in ordered])
        connection = await self.session.connection()
        rows = await connection.execute(_LITE_LOCK_USERS, {"user_ids": ordered})
        return {
            row.user_id: UserTimezone(row.timezone, row.timezone_time, row.timezone_event_id)
            for row in rows
        }

    async def set_user_timezone(
        self, user_id: uuid.UUID, *, timezone: str, time: datetime, event_id: str
    ) -> None:
        await self.execute(
            sa.update(_users)
            .where(_users.c.user_id == user_id)
            .values(timezone=timezone, timezone_time=time, timezone_event_id=event_id)
        )

    # -- days ----------------------------------------------------------------------------

    async def bump_days(self, deltas: Mapping[DayKey, DayDelta]) -> dict[DayKey, tuple[int, int]]:
        """Add to many days' counts in one statement; each day's new (login_events,
        tasks_completed)."""
        if not deltas:
            return {}
        if self.postgres:
            arrays = _columns(
                (
                    (
                        user_id,
                        local_date,
                        d.logins,
                        d.login_events,
                        d.tasks_created,
                        d.tasks_completed,
                    )
                    for (user_id, local_date), d in deltas.items()
                ),
                ("user_id", "local_date", *_DAY_COUNTS),
            )
            return {
                (row.user_id, row.local_date): (row.login_events, row.tasks_completed)
                for row in await self.execute_arrays(_PG_BUMP_DAYS, arrays)
            }
        rows = [
            {
                "user_id": user_id,
                "local_date": local_date,
                "logins": delta.logins,
                "login_events": delta.login_events,
                "tasks_created": delta.tasks_created,
                "tasks_completed": delta.tasks_completed,
            }
            for (user_id, local_date), delta in deltas.items()
        ]
        keys = {(user_id.hex, day.isoformat()): (user_id, day) for user_id, day in deltas}
        found: Sequence[Any] = (await self.execute_many(_LITE_BUMP_DAYS, rows)).all()
        return {keys[(row[0], row[1])]: (int(row[2]), int(row[3])) for row in found}

    async def bump_tasks(self, deltas: Mapping[TaskKey, int]) -> dict[TaskKey, int]:
        """Add events behind many (day, kind, task) keys in one statement; each key's new
        count. Rows left at 0 or below are deleted (one more statement, only when any is)."""
        if not deltas:
            return {}
        if self.postgres:
            arrays = _columns(
                ((*key, delta) for key, delta in deltas.items()),
                ("user_id", "local_date", "kind", "task_id", "events"),
            )
            counts = {
                (row.user_id, row.local_date, row.kind, row.task_id): row.events
                for row in await self.execute_arrays(_PG_BUMP_TASKS, arrays)
            }
            gone = [key for key, events in counts.items() if events <= 0]
            if gone:
                names = ("user_id", "local_date", "kind", "task_id")
                await self.execute_arrays(_PG_DELETE_TASKS, _columns(gone, names))
            return counts
        rows = [
            {
                "user_id": user_id,
                "local_date": local_date,
                "kind": kind,
                "task_id": task_id,
                "events": delta,
            }
            for (user_id, local_date, kind, task_id), delta in deltas.items()
        ]
        keys = {
            (u.hex, day.isoformat(), kind, t.hex): (u, day, kind, t) for u, day, kind, t in deltas
        }
        found: Sequence[Any] = (await self.execute_many(_LITE_BUMP_TASKS, rows)).all()
        counts = {keys[(row[0], row[1], row[2], row[3])]: int(row[4]) for row in found}
        gone = [key for key, events in counts.items() if events <= 0]
        if gone:
            await self.execute(
                sa.delete(_tasks).where(
                    sa.tuple_(
                        _tasks.c.user_id, _tasks.c.local_date, _tasks.c.kind, _tasks.c.task_id
                    ).in_(gone)
                )
            )
        return counts

    async def days(self, user_id: uuid.UUID, start: date, end: date) -> list[Day]:
        """The user's day rows from ``start`` to ``end`` inclusive (one index range)."""
        connection = await self.session.connection()
        rows = await connection.execute(_DAYS, {"user_id": user_id, "start": start, "end": end})
        # _DAYS selects Day's fields in Day's order: a row is its positional arguments.
        return [Day(*row) for row in rows]

    async def grouped_days(
        self, user_id: uuid.UUID, start: date, end: date, group: str
    ) -> list[tuple[Day, int]]:
        """Per ISO week (``group="week"``) or month, the sums of the user's day rows from
        ``start`` to ``end`` as a Day dated by the group's first row, and its active days."""
        connection = await self.session.connection()
        statement = _grouped_days(self.dialect, group)
        rows = await connection.execute(statement, {"user_id": user_id, "start": start, "end": end})
        return [(Day(*row[:-1]), int(row[-1])) for row in rows]

    async def user_timezone(self, user_id: uuid.UUID) -> str | None:
        """The user's last known timezone (rule 1), None when analytics knows none."""
        connection = await self.session.connection()
        row = (await connection.execute(_TIMEZONE, {"user_id": user_id})).one_or_none()
        return None if row is None else row.timezone

    async def completed_in(
        self, ranges: Mapping[uuid.UUID, Sequence[tuple[date, date]]]
    ) -> dict[DayKey, int]:
        """``tasks_completed`` of the non-zero days of several users' date ranges (one query)."""
        clauses = [
            (_daily.c.user_id == user_id) & _daily.c.local_date.between(start, end)
            for user_id, spans in ranges.items()
            for start, end in spans
        ]
        if not clauses:
            return {}
        rows = await self.execute(
            sa.select(_daily.c.user_id, _daily.c.local_date, _daily.c.tasks_completed).where(
                sa.or_(*clauses) & (_daily.c.tasks_completed > 0)
            )
        )
        return {(row.user_id, row.local_date): int(row.tasks_completed) for row in rows}

    async def active_days_from(self, user_id: uuid.UUID, day: date) -> list[date]:
        """The user's days with a completion on or after ``day`` (today and any after it)."""
        rows = await self.execute(
            sa.select(_daily.c.local_date).where(
                (_daily.c.user_id == user_id)
                & (_daily.c.local_date >= day)
                & (_daily.c.tasks_completed > 0)
            )
        )
        return [row.local_date for row in rows]

    # -- classified completions ----------------------------------------------------------

    async def add_completions(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert completion events (``TaskCompletion`` columns) in one statement."""
        if rows and self.postgres:
            names = (
                "event_id",
                "user_id",
                "task_id",
                "local_date",
                "occurred_at",
                "completed_at",
                "due_at",
            )
            arrays = _columns(([row[name] for name in names] for row in rows), names)
            await self.execute_arrays(_PG_ADD_COMPLETIONS, arrays)
        elif rows:
            await self.execute_many(sa.insert(_completions), rows)

    async def move_completions(self, moves: Sequence[tuple[str, date]]) -> None:
        """Set the local date of completion events ``(event_id, local_date)``."""
        if not moves:
            return
        await self.execute_many(
            sa.update(_completions)
            .where(_completions.c.event_id == sa.bindparam("b_event_id"))
            .values(local_date=sa.bindparam("b_local_date")),
            [{"b_event_id": event_id, "b_local_date": day} for event_id, day in moves],
        )

    async def completions_to_classify(
        self, days: Sequence[DayKey], tasks: Sequence[tuple[uuid.UUID, uuid.UUID]]
    ) -> list[tuple[Completion, str | None]]:
        """Every completion event, with its task's known priority, of the given (user, day)s
        and of every day on which one of ``tasks`` (``(user_id, task_id)``) was completed:
        one statement."""
        if not days and not tasks:
            return []
        if self.postgres:
            arrays = {
                **_columns(days, ("user_id", "local_date")),
                **_columns(tasks, ("task_user_id", "task_id")),
            }
            found = await self.execute_arrays(_PG_COMPLETIONS_TO_CLASSIFY, arrays)
            return _classified(found)
        day_key = sa.tuple_(_completions.c.user_id, _completions.c.local_date)
        clauses: list[sa.ColumnElement[bool]] = []
        if days:
            clauses.append(day_key.in_(list(days)))
        if tasks:
            inner = _completions.alias("repriced")
            clauses.append(
                day_key.in_(
                    sa.select(inner.c.user_id, inner.c.local_date).where(
                        sa.tuple_(inner.c.user_id, inner.c.task_id).in_(list(tasks))
                    )
                )
            )
        rows = await self.execute(
            sa.select(
                _completions.c.user_id,
                _completions.c.task_id,
                _completions.c.local_date,
                _completions.c.event_id,
                _completions.c.occurred_at,
                _completions.c.completed_at,
                _completions.c.due_at,
                _priorities.c.priority,
            )
            .select_from(
                _completions.outerjoin(
                    _priorities,
                    (_priorities.c.user_id == _completions.c.user_id)
                    & (_priorities.c.task_id == _completions.c.task_id),
                )
            )
            .where(sa.or_(*clauses))
        )
        return _classified(rows)

    async def learn_priorities(
        self, offered: Mapping[tuple[uuid.UUID, uuid.UUID], KnownPriority]
    ) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """Upsert tasks' priorities where the offer is newer (by time, then event id) than
        what is known; the ``(user_id, task_id)`` that were written (one statement)."""
        if not offered:
            return []
        if self.postgres:
            arrays = _columns(
                (
                    (user_id, task_id, value.priority, value.time, value.event_id)
                    for (user_id, task_id), value in offered.items()
                ),
                ("user_id", "task_id", "priority", "priority_time", "priority_event_id"),
            )
            written = await self.execute_arrays(_PG_LEARN_PRIORITIES, arrays)
            return [(row.user_id, row.task_id) for row in written]
        rows = await self.execute_many(
            _LITE_LEARN_PRIORITIES,
            [
                {
                    "user_id": user_id,
                    "task_id": task_id,
                    "priority": value.priority,
                    "priority_time": value.time,
                    "priority_event_id": value.event_id,
                }
                for (user_id, task_id), value in offered.items()
            ],
        )
        keys = {(user_id.hex, task_id.hex): (user_id, task_id) for user_id, task_id in offered}
        stored: Sequence[Any] = rows.all()
        return [keys[(row[0], row[1])] for row in stored]

    async def set_classified(self, counts: Mapping[DayKey, Sequence[int]]) -> None:
        """Set the classified counts (``CLASSIFIED`` order) of existing day rows."""
        if not counts:
            return
        if self.postgres:
            arrays = _columns(
                ((user_id, day, *values) for (user_id, day), values in counts.items()),
                ("user_id", "local_date", *CLASSIFIED),
            )
            await self.execute_arrays(_PG_SET_CLASSIFIED, arrays)
            return
        await self.execute_many(
            _LITE_SET_CLASSIFIED,
            [
                {
                    "b_user_id": user_id,
                    "b_local_date": day,
                    **{f"b_{name}": value for name, value in zip(CLASSIFIED, values, strict=True)},
                }
                for (user_id, day), values in counts.items()
            ],
        )

    # -- goals ---------------------------------------------------------------------------

    async def goals_of(self, user_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[GoalRow]]:
        """The goal history of each user that has one, oldest first."""
        if not user_ids:
            return {}
        connection = await self.session.connection()
        statement = _PG_GOALS_OF if self.postgres else _LITE_GOALS_OF
        rows = await connection.execute(statement, {"user_ids": sorted(set(user_ids))})
        found: dict[uuid.UUID, list[GoalRow]] = {}
        for row in rows:
            found.setdefault(row.user_id, []).append(
                GoalRow(row.effective_date, row.daily_tasks, row.weekly_tasks)
            )
        return found

    async def goal_at(self, user_id: uuid.UUID, day: date) -> GoalRow | None:
        """The goals in effect on ``day``: one index seek."""
        connection = await self.session.connection()
        row = (await connection.execute(_GOAL_AT, {"user_id": user_id, "day": day})).one_or_none()
        return (
            None if row is None else GoalRow(row.effective_date, row.daily_tasks, row.weekly_tasks)
        )

    async def set_goal(
        self,
        user_id: uuid.UUID,
        day: date,
        *,
        daily_tasks: int | None,
        weekly_tasks: int | None,
        at: datetime,
    ) -> None:
        """The goals from ``day`` on: rows on or after it are replaced by this one."""
        await self.execute(
            sa.delete(_goals).where(
                (_goals.c.user_id == user_id) & (_goals.c.effective_date >= day)
            )
        )
        await self.execute(
            sa.insert(_goals).values(
                user_id=user_id,
                effective_date=day,
                daily_tasks=daily_tasks,
                weekly_tasks=weekly_tasks,
                set_at=at,
            )
        )

    # -- floating events -----------------------------------------------------------------

    async def add_floating_many(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert floating events (``event_id, user_id, kind, task_id, occurred_at,
        local_date``) in one statement."""
        if rows:
            await self.execute_many(sa.insert(_floating), rows)

    async def floating_events_of(
        self, user_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[Floating]]:
        """The floating events of several users, in one query."""
        found: dict[uuid.UUID, list[Floating]] = {user_id: [] for user_id in user_ids}
        if not user_ids:
            return found
        rows = await self.execute(
            sa.select(
                _floating.c.user_id,
                _floating.c.event_id,
                _floating.c.kind,
                _floating.c.task_id,
                _floating.c.occurred_at,
                _floating.c.local_date,
            )
            .where(_floating.c.user_id.in_(list(user_ids)))
            .order_by(_floating.c.user_id, _floating.c.event_id)
        )
        for row in rows:
            found[row.user_id].append(
                Floating(row.event_id, row.kind, row.task_id, row.occurred_at, row.local_date)
            )
        return found

    async def move_floating_many(self, moves: Sequence[tuple[uuid.UUID, str, date]]) -> None:
        """Set the local date of floating events ``(user_id, event_id, local_date)``."""
        if not moves:
            return
        await self.execute_many(
            sa.update(_floating)
            .where(
                (_floating.c.user_id == sa.bindparam("b_user_id"))
                & (_floating.c.event_id == sa.bindparam("b_event_id"))
            )
            .values(local_date=sa.bindparam("b_local_date")),
            [
                {"b_user_id": user_id, "b_event_id": event_id, "b_local_date": local_date}
                for user_id, event_id, local_date in moves
            ],
        )

    # -- streak runs ---------------------------------------------------------------------

    def _run_key(self, user_id: uuid.UUID, kind: str) -> sa.ColumnElement[bool]:
        return (_runs.c.user_id == user_id) & (_runs.c.kind == kind)

    @staticmethod
    def _run(row: Any) -> Run:
        return Run(row.start_date, row.end_date, int(row.length), int(row.longest_before))

    def _run_columns(self) -> tuple[sa.Column[Any], ...]:
        return (_runs.c.start_date, _runs.c.end_date, _runs.c.length, _runs.c.longest_before)

    async def run_at_or_before(self, user_id: uuid.UUID, kind: str, day: date) -> Run | None:
        """The run starting on or before ``day`` that starts last: one index seek."""
        row = (
            await self.execute(
                sa.select(*self._run_columns())
                .where(self._run_key(user_id, kind) & (_runs.c.start_date <= day))
                .order_by(_runs.c.start_date.desc())
                .limit(1)
            )
        ).one_or_none()
        return None if row is None else self._run(row)

    async def runs_at_or_before(
        self, user_id: uuid.UUID, kinds: Sequence[str], day: date
    ) -> dict[str, Run]:
        """For each kind, the run starting last on or before ``day``: one statement, one
        index seek per kind (the report's streaks in one round trip)."""
        key = tuple(kinds)
        statement = _LATEST_RUNS.get(key)
        if statement is None:
            statement = _latest_runs(key)
        connection = await self.session.connection()
        rows = await connection.execute(statement, {"user_id": user_id, "day": day})
        return {row.kind: self._run(row) for row in rows}

    async def runs_from(self, user_id: uuid.UUID, kind: str, day: date) -> list[Run]:
        rows = await self.execute(
            sa.select(*self._run_columns())
            .where(self._run_key(user_id, kind) & (_runs.c.start_date >= day))
            .order_by(_runs.c.start_date)
        )
        return [self._run(row) for row in rows]

    @staticmethod
    def _by_cut(
        cuts: Mapping[RunKey, date], ends: Callable[[date], sa.ColumnElement[bool]]
    ) -> sa.ColumnElement[bool]:
        """(user, kind) in each group of keys sharing a cut, and the run's end against it."""
        groups: dict[date, list[RunKey]] = {}
        for key, cut in cuts.items():
            groups.setdefault(cut, []).append(key)
        return sa.or_(
            *(
                sa.tuple_(_runs.c.user_id, _runs.c.kind).in_(keys) & ends(cut)
                for cut, keys in sorted(groups.items())
            )
        )

    async def runs_ending_from(self, cuts: Mapping[RunKey, date]) -> dict[RunKey, list[Run]]:
        """The runs of each (user, kind) that end on or after its cut, in order (one query)."""
        found: dict[RunKey, list[Run]] = {}
        if not cuts:
            return found
        if self.postgres:
            arrays = _columns(
                ((*key, cut) for key, cut in cuts.items()), ("user_id", "kind", "cut")
            )
            for row in await self.execute_arrays(_PG_RUNS_ENDING_FROM, arrays):
                found.setdefault((row.user_id, row.kind), []).append(self._run(row))
            return found
        rows = await self.execute(
            sa.select(_runs.c.user_id, _runs.c.kind, *self._run_columns())
            .where(self._by_cut(cuts, lambda cut: _runs.c.end_date >= cut))
            .order_by(_runs.c.user_id, _runs.c.kind, _runs.c.start_date)
        )
        for row in rows:
            found.setdefault((row.user_id, row.kind), []).append(self._run(row))
        return found

    async def longest_ending_before(self, cuts: Mapping[RunKey, date]) -> dict[RunKey, int]:
        """The longest run ending before its cut of each (user, kind) (absent: none)."""
        if not cuts:
            return {}
        if self.postgres:
            arrays = _columns(
                ((*key, cut) for key, cut in cuts.items()), ("user_id", "kind", "cut")
            )
            longest = await self.execute_arrays(_PG_LONGEST_ENDING_BEFORE, arrays)
            return {(row.user_id, row.kind): int(row.longest) for row in longest}
        rows = await self.execute(
            sa.select(_runs.c.user_id, _runs.c.kind, sa.func.max(_runs.c.length).label("longest"))
            .where(self._by_cut(cuts, lambda cut: _runs.c.end_date < cut))
            .group_by(_runs.c.user_id, _runs.c.kind)
        )
        return {(row.user_id, row.kind): int(row.longest) for row in rows}

    async def replace_runs(
        self,
        deleted: Sequence[tuple[uuid.UUID, str, date]],
        inserted: Sequence[tuple[uuid.UUID, str, Run]],
    ) -> None:
        """Delete runs by (user, kind, start), then insert runs: two statements at most."""
        if self.postgres:
            if deleted:
                names = ("user_id", "kind", "start_date")
                await self.execute_arrays(_PG_DELETE_RUNS, _columns(deleted, names))
            if inserted:
                arrays = _columns(
                    (
                        (user_id, kind, run.start, run.end, run.length, run.longest_before)
                        for user_id, kind, run in inserted
                    ),
                    ("user_id", "kind", "start_date", "end_date", "length", "longest_before"),
                )
                await self.execute_arrays(_PG_ADD_RUNS, arrays)
            return
        if deleted:
            await self.execute(
                sa.delete(_runs).where(
                    sa.tuple_(_runs.c.user_id, _runs.c.kind, _runs.c.start_date).in_(list(deleted))
                )
            )
        if inserted:
            await self.execute_many(
                sa.insert(_runs),
                [
                    {
                        "user_id": user_id,
                        "kind": kind,
                        "start_date": run.start,
                        "end_date": run.end,
                        "length": run.length,
                        "longest_before": run.longest_before,
                    }
                    for user_id, kind, run in inserted
                ],
            )

    # -- operations (operator commands, not user data) -----------------------------------

    async def clear_projections(self) -> None:
        """Empty every projection and the inbox, for a rebuild from the streams.

        On PostgreSQL the tables are locked first: the clear waits for batches in flight
        and holds new ones back until it commits. Without the lock a batch committing
        meanwhile keeps its new inbox rows while its updates to existing rows are deleted,
        and the replay would skip those events as duplicates. (SQLite has one writer.)
        """
        if self.postgres:
            names = ", ".join(table.name for table in PROJECTION_TABLES)
            await self.execute(sa.text(f"LOCK TABLE {names} IN EXCLUSIVE MODE"))
        for table in PROJECTION_TABLES:
            await self.execute(sa.delete(table))

    async def add_dead_letter(
        self,
        *,
        stream: str,
        stream_sequence: int,
        subject: str,
        event_id: str | None,
        deliveries: int,
        payload: bytes,
        error: str,
        at: datetime,
    ) -> bool:
        """Record a dead letter once per stream message; False when it was already there.

        Its text columns must store whatever the message carried: NUL (which PostgreSQL
        text refuses) becomes U+FFFD; the payload column keeps the exact bytes.
        """
        statement = (
            self.insert(_dead)
            .values(
                stream=stream,
                stream_sequence=stream_sequence,
                subject=_storable(subject)[:200],
                event_id=None if event_id is None else _storable(event_id)[:200],
                deliveries=deliveries,
                payload=payload,
                error=_storable(error)[:1000],
                failed_at=at,
            )
            .on_conflict_do_nothing(index_elements=["stream", "stream_sequence"])
        )
        result = await self.execute(statement)
        return result.rowcount == 1

    async def dead_letters(self, ids: Iterable[int] | None = None) -> list[DeadLetterRow]:
        statement = sa.select(
            _dead.c.id,
            _dead.c.stream,
            _dead.c.stream_sequence,
            _dead.c.subject,
            _dead.c.event_id,
            _dead.c.deliveries,
            _dead.c.payload,
            _dead.c.error,
            _dead.c.failed_at,
        ).order_by(_dead.c.id)
        if ids is not None:
            statement = statement.where(_dead.c.id.in_(list(ids)))
        rows = await self.execute(statement)
        return [
            DeadLetterRow(
                id=row.id,
                stream=row.stream,
                stream_sequence=row.stream_sequence,
                subject=row.subject,
                event_id=row.event_id,
                deliveries=row.deliveries,
                payload=bytes(row.payload),
                error=row.error,
                failed_at=row.failed_at,
            )
            for row in rows
        ]

    async def delete_dead_letter(self, dead_letter_id: int) -> None:
        await self.execute(sa.delete(_dead).where(_dead.c.id == dead_letter_id))

    async def count_dead_letters(self) -> int:
        return int((await self.execute(sa.select(sa.func.count()).select_from(_dead))).scalar_one())
