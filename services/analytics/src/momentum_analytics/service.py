"""Business rules of analytics (docs/spec/analytics.md): local days, streak runs, reports."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from momentum_analytics.decoding import Fact
from momentum_analytics.models import COMPLETED, COMPLETION, CREATED, LOGIN
from momentum_analytics.repository import AnalyticsRepository, Day, Run, UserTimezone
from momentum_analytics.schemas import (
    DayReport,
    PreviousWeek,
    Streak,
    StreaksPublic,
    WeeklyReport,
    WeekStreaks,
    WeekTotals,
)
from momentum_shared.errors import UnprocessableEntity

ONE_DAY = timedelta(days=1)
# fullmatch, not match: "$" would also accept a trailing newline.
_WEEK = re.compile(r"([0-9]{4})-W([0-9]{2})")


def local_date(moment: datetime, timezone: str) -> date:
    """The calendar date of ``moment`` in ``timezone`` (DST-aware through zoneinfo)."""
    return moment.astimezone(ZoneInfo(timezone)).date()


# -- applying events ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Applied:
    applied: int
    duplicates: int


async def apply_facts(
    repo: AnalyticsRepository, facts: Sequence[Fact], *, now: datetime
) -> Applied:
    """Apply a batch: the inbox decides what is new, projections change only for new events."""
    users = await repo.lock_users([fact.user_id for fact in facts])
    applied = duplicates = 0
    for fact in facts:
        if not await repo.record_processed(fact.event_id, fact.event_type, now):
            duplicates += 1
            continue
        if fact.kind == "timezone":
            await _learn_timezone(repo, users, fact)
        else:
            await _place(repo, users, fact)
        applied += 1
    return Applied(applied, duplicates)


async def _learn_timezone(
    repo: AnalyticsRepository, users: dict[uuid.UUID, UserTimezone], fact: Fact
) -> None:
    if fact.timezone is None:
        return
    known = users[fact.user_id]
    if (
        known.timezone is not None
        and known.time is not None
        and (fact.occurred_at, fact.event_id) <= (known.time, known.event_id or "")
    ):
        return  # an older announcement arriving late changes nothing
    await repo.set_user_timezone(
        fact.user_id, timezone=fact.timezone, time=fact.occurred_at, event_id=fact.event_id
    )
    users[fact.user_id] = UserTimezone(fact.timezone, fact.occurred_at, fact.event_id)
    # Events that carried no usable usertz follow the last known timezone: move them.
    for floating in await repo.floating_events(fact.user_id):
        moved = local_date(floating.occurred_at, fact.timezone)
        if moved == floating.local_date:
            continue
        await _contribute(
            repo, fact.user_id, floating.kind, floating.task_id, floating.local_date, -1
        )
        await _contribute(repo, fact.user_id, floating.kind, floating.task_id, moved, +1)
        await repo.move_floating(fact.user_id, floating.event_id, moved)


async def _place(
    repo: AnalyticsRepository, users: dict[uuid.UUID, UserTimezone], fact: Fact
) -> None:
    if fact.usertz is not None:
        day = local_date(fact.occurred_at, fact.usertz)
    else:
        day = local_date(fact.occurred_at, users[fact.user_id].timezone or "UTC")
        await repo.add_floating(
            fact.user_id,
            event_id=fact.event_id,
            kind=fact.kind,
            task_id=fact.task_id,
            occurred_at=fact.occurred_at,
            local_date=day,
        )
    await _contribute(repo, fact.user_id, fact.kind, fact.task_id, day, +1)


async def _contribute(
    repo: AnalyticsRepository,
    user_id: uuid.UUID,
    kind: str,
    task_id: uuid.UUID | None,
    day: date,
    sign: int,
) -> None:
    """Add (sign=+1) or take back (sign=-1) one event's contribution to ``day``."""
    if kind in ("login_password", "login_refresh"):
        login_events, _ = await repo.bump_day(
            user_id,
            day,
            logins=sign if kind == "login_password" else 0,
            login_events=sign,
        )
        await _follow_transition(repo, user_id, LOGIN, day, sign, login_events)
        return
    if task_id is None:
        return
    task_kind = CREATED if kind == "created" else COMPLETED
    events = await repo.bump_task(user_id, day, task_kind, task_id, sign)
    # Distinct task ids: only the first event of a task on a day (or the last one leaving) counts.
    if not ((sign > 0 and events == 1) or (sign < 0 and events == 0)):
        return
    if task_kind == CREATED:
        await repo.bump_day(user_id, day, tasks_created=sign)
        return
    _, completed = await repo.bump_day(user_id, day, tasks_completed=sign)
    await _follow_transition(repo, user_id, COMPLETION, day, sign, completed)


async def _follow_transition(
    repo: AnalyticsRepository, user_id: uuid.UUID, kind: str, day: date, sign: int, count: int
) -> None:
    if sign > 0 and count == 1:
        await add_streak_day(repo, user_id, kind, day)
    elif sign < 0 and count == 0:
        await remove_streak_day(repo, user_id, kind, day)


async def add_streak_day(
    repo: AnalyticsRepository, user_id: uuid.UUID, kind: str, day: date
) -> None:
    """Make ``day`` part of the runs, merging with its neighbours (any arrival order)."""
    left = await repo.run_at_or_before(user_id, kind, day)
    if left is not None and left.end >= day:
        return
    right = await repo.run_starting(user_id, kind, day + ONE_DAY)
    if left is not None and left.end == day - ONE_DAY:
        end = day
        if right is not None:
            end = right.end
            await repo.delete_run(user_id, kind, right.start)
        await repo.update_run(
            user_id, kind, left.start, end=end, length=(end - left.start).days + 1
        )
        changed = left.start
    elif right is not None:
        await repo.delete_run(user_id, kind, right.start)
        await repo.insert_run(user_id, kind, Run(day, right.end, right.length + 1, 0))
        changed = day
    else:
        await repo.insert_run(user_id, kind, Run(day, day, 1, 0))
        changed = day
    await _fix_longest_before(repo, user_id, kind, changed)


async def remove_streak_day(
    repo: AnalyticsRepository, user_id: uuid.UUID, kind: str, day: date
) -> None:
    """Take ``day`` out of its run, splitting it in two when it was inside."""
    run = await repo.run_at_or_before(user_id, kind, day)
    if run is None or run.end < day:
        return
    await repo.delete_run(user_id, kind, run.start)
    if run.start < day:
        await repo.insert_run(
            user_id, kind, Run(run.start, day - ONE_DAY, (day - run.start).days, 0)
        )
    if day < run.end:
        await repo.insert_run(user_id, kind, Run(day + ONE_DAY, run.end, (run.end - day).days, 0))
    await _fix_longest_before(repo, user_id, kind, run.start)


async def _fix_longest_before(
    repo: AnalyticsRepository, user_id: uuid.UUID, kind: str, start: date
) -> None:
    """Recompute ``longest_before`` from the run at ``start`` on, stopping once it agrees.

    Runs after the changed ones kept their lengths, so once a stored value matches the
    recomputed one every later value matches too. Appending today costs one row.
    """
    previous = await repo.run_before(user_id, kind, start)
    longest = max(previous.longest_before, previous.length) if previous else 0
    for index, run in enumerate(await repo.runs_from(user_id, kind, start)):
        if run.longest_before != longest:
            await repo.set_longest_before(user_id, kind, run.start, longest)
        elif index >= 1:
            break
        longest = max(longest, run.length)


def runs_of(days: Sequence[date]) -> list[Run]:
    """The maximal runs of a set of days, with ``longest_before`` (for bulk loads and checks)."""
    runs: list[Run] = []
    longest = 0
    for day in sorted(set(days)):
        if runs and runs[-1].end == day - ONE_DAY:
            last = runs[-1]
            runs[-1] = Run(last.start, day, last.length + 1, last.longest_before)
        else:
            if runs:
                longest = max(longest, runs[-1].length)
            runs.append(Run(day, day, 1, longest))
    return runs


# -- reading ---------------------------------------------------------------------------------


def streak_as_of(run: Run | None, as_of: date) -> Streak:
    """Rule 8 from the one run that starts last on or before ``as_of``."""
    if run is None:
        return Streak(current=0, longest=0, last_active_date=None)
    if run.end >= as_of:
        part = (as_of - run.start).days + 1
        return Streak(current=part, longest=max(run.longest_before, part), last_active_date=as_of)
    current = run.length if run.end == as_of - ONE_DAY else 0
    return Streak(
        current=current,
        longest=max(run.longest_before, run.length),
        last_active_date=run.end,
    )


async def streak(repo: AnalyticsRepository, user_id: uuid.UUID, kind: str, as_of: date) -> Streak:
    return streak_as_of(await repo.run_at_or_before(user_id, kind, as_of), as_of)


async def streaks(
    repo: AnalyticsRepository, user_id: uuid.UUID, as_of: date
) -> tuple[Streak, Streak]:
    """The login and completion streaks as of ``as_of``, in one query."""
    runs = await repo.runs_at_or_before(user_id, (LOGIN, COMPLETION), as_of)
    return streak_as_of(runs.get(LOGIN), as_of), streak_as_of(runs.get(COMPLETION), as_of)


def today_in(now: datetime, timezone: str) -> date:
    """Rule: "today" is the current date in the caller's timezone."""
    return local_date(now, timezone)


async def get_streaks(
    repo: AnalyticsRepository, *, user_id: uuid.UUID, timezone: str, now: datetime
) -> StreaksPublic:
    today = today_in(now, timezone)
    login, completion = await streaks(repo, user_id, today)
    return StreaksPublic(
        user_id=user_id, timezone=timezone, today=today, login=login, completion=completion
    )


def _invalid_week(detail: str, value: str | None) -> UnprocessableEntity:
    return UnprocessableEntity(
        detail,
        extra={
            "errors": [
                {"loc": ["query", "week"], "msg": detail, "type": "value_error", "input": value}
            ]
        },
    )


def week_label(monday: date) -> str:
    year, week, _ = monday.isocalendar()
    return f"{year:04d}-W{week:02d}"


def parse_week(value: str) -> date:
    """The Monday of an ISO week ``YYYY-Www`` (week 53 only in years that have one)."""
    match = _WEEK.fullmatch(value)
    if match is None:
        raise _invalid_week("week must be an ISO week like 2026-W48", value)
    try:
        return date.fromisocalendar(int(match[1]), int(match[2]), 1)
    except ValueError:
        raise _invalid_week(f"{value} is not a week of its year", value) from None


def _totals(days: Sequence[Day]) -> WeekTotals:
    return WeekTotals(
        logins=sum(day.logins for day in days),
        tasks_created=sum(day.tasks_created for day in days),
        tasks_completed=sum(day.tasks_completed for day in days),
        active_days=sum(
            1
            for day in days
            if day.login_events > 0 or day.tasks_created > 0 or day.tasks_completed > 0
        ),
    )


async def get_weekly_report(
    repo: AnalyticsRepository,
    *,
    user_id: uuid.UUID,
    timezone: str,
    week: str | None,
    now: datetime,
) -> WeeklyReport:
    today = today_in(now, timezone)
    start = parse_week(week) if week is not None else today - timedelta(days=today.weekday())
    if start > today:
        raise _invalid_week(f"{week} starts after today ({today.isoformat()})", week)
    end = start + timedelta(days=6)
    try:
        previous_start = start - timedelta(days=7)
    except OverflowError:
        raise _invalid_week(f"{week} has no previous week", week) from None
    rows = await repo.days(user_id, previous_start, end)
    this_week = [row for row in rows if row.local_date >= start]
    previous_week = [row for row in rows if row.local_date < start]
    by_date = {row.local_date: row for row in this_week}
    days: list[DayReport] = []
    for offset in range(7):
        day = start + timedelta(days=offset)
        row = by_date.get(day)
        days.append(
            DayReport(
                date=day,
                logins=row.logins if row else 0,
                tasks_created=row.tasks_created if row else 0,
                tasks_completed=row.tasks_completed if row else 0,
            )
        )
    as_of = min(end, today)
    login, completion = await streaks(repo, user_id, as_of)
    return WeeklyReport(
        user_id=user_id,
        week=week_label(start),
        timezone=timezone,
        start_date=start,
        end_date=end,
        totals=_totals(this_week),
        days=days,
        streaks=WeekStreaks(login=login, completion=completion),
        previous_week=PreviousWeek(week=week_label(previous_start), totals=_totals(previous_week)),
        generated_at=now,
    )
