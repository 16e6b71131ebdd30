"""Business rules of analytics (docs/spec/analytics.md): local days, streak runs, reports."""

from __future__ import annotations

import re
import uuid
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from momentum_analytics.decoding import Fact
from momentum_analytics.models import (
    COMPLETED,
    COMPLETION,
    CREATED,
    DAILY_GOAL,
    DEFAULT_PRIORITY,
    LATE,
    LOGIN,
    ON_TIME,
    PRIORITIES,
    UNDATED,
    WEEKLY_GOAL,
)
from momentum_analytics.repository import (
    AnalyticsRepository,
    Completion,
    Day,
    DayDelta,
    DayKey,
    GoalRow,
    KnownPriority,
    Run,
    RunKey,
    TaskKey,
    UserTimezone,
)
from momentum_analytics.schemas import (
    CompletedByPriority,
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
ONE_WEEK = timedelta(days=7)
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
    """Apply a batch set-based: a handful of statements whatever its size.

    The inbox decides what is new (one insert); timezones are learned first, so every
    event without a usable ``usertz`` is placed by its user's last known timezone; the
    contributions are summed per (day, task) and per day, written with one upsert each;
    the days whose activity appeared or vanished change the streak runs of their users.
    The result is that of applying the events one at a time, in any order.
    """
    if not facts:
        return Applied(0, 0)
    users = await repo.lock_users([fact.user_id for fact in facts])
    distinct: dict[str, Fact] = {}
    for fact in facts:
        distinct.setdefault(fact.event_id, fact)
    new = await repo.record_processed_many(
        [(fact.event_id, fact.event_type) for fact in distinct.values()], now
    )
    fresh = [fact for fact in distinct.values() if fact.event_id in new]
    if fresh:
        changes = _Changes()
        await _learn_timezones(repo, users, [f for f in fresh if f.kind == "timezone"], changes)
        floating: list[dict[str, object]] = []
        for fact in fresh:
            if fact.kind not in ("timezone", "repriced"):
                _place(users, fact, changes, floating)
        await repo.add_floating_many(floating)
        await repo.add_completions(changes.completions)
        await repo.move_completions(changes.moved_completions)
        completed_days = await _write(repo, changes)
        await _classify(repo, changes, await _learn_priorities(repo, fresh))
        await refresh_goal_days(repo, completed_days)
    return Applied(len(fresh), len(facts) - len(fresh))


class _Changes:
    """What a batch adds to each (day, kind, task) and to each day, before writing."""

    def __init__(self) -> None:
        self.tasks: dict[TaskKey, int] = defaultdict(int)
        self.logins: dict[DayKey, list[int]] = defaultdict(lambda: [0, 0])
        # New completion events, moved ones, and the days whose classification may change.
        self.completions: list[dict[str, object]] = []
        self.moved_completions: list[tuple[str, date]] = []
        self.completion_days: set[DayKey] = set()

    def contribute(
        self, user_id: uuid.UUID, kind: str, task_id: uuid.UUID | None, day: date, sign: int
    ) -> None:
        """Add (sign=+1) or take back (sign=-1) one event's contribution to ``day``."""
        if kind in ("login_password", "login_refresh"):
            counts = self.logins[(user_id, day)]
            counts[0] += sign if kind == "login_password" else 0
            counts[1] += sign
        elif task_id is not None:
            self.tasks[(user_id, day, CREATED if kind == "created" else COMPLETED, task_id)] += sign


async def _learn_timezones(
    repo: AnalyticsRepository,
    users: dict[uuid.UUID, UserTimezone],
    facts: Sequence[Fact],
    changes: _Changes,
) -> None:
    learned: dict[uuid.UUID, tuple[str, Fact]] = {}
    for fact in facts:
        if fact.timezone is None:
            continue
        known = users[fact.user_id]
        if fact.user_id in learned:
            _, latest = learned[fact.user_id]
            known = UserTimezone(latest.timezone, latest.occurred_at, latest.event_id)
        if (
            known.timezone is not None
            and known.time is not None
            and (fact.occurred_at, fact.event_id) <= (known.time, known.event_id or "")
        ):
            continue  # an older announcement arriving late changes nothing
        learned[fact.user_id] = (fact.timezone, fact)
    if not learned:
        return
    for user_id, (timezone, fact) in learned.items():
        await repo.set_user_timezone(
            user_id, timezone=timezone, time=fact.occurred_at, event_id=fact.event_id
        )
        users[user_id] = UserTimezone(timezone, fact.occurred_at, fact.event_id)
    # Events that carried no usable usertz follow the last known timezone: move them.
    moves: list[tuple[uuid.UUID, str, date]] = []
    for user_id, events in (await repo.floating_events_of(sorted(learned))).items():
        timezone, _ = learned[user_id]
        for floating in events:
            moved = local_date(floating.occurred_at, timezone)
            if moved == floating.local_date:
                continue
            changes.contribute(user_id, floating.kind, floating.task_id, floating.local_date, -1)
            changes.contribute(user_id, floating.kind, floating.task_id, moved, +1)
            moves.append((user_id, floating.event_id, moved))
            if floating.kind == "completed":
                changes.moved_completions.append((floating.event_id, moved))
                changes.completion_days |= {(user_id, floating.local_date), (user_id, moved)}
    await repo.move_floating_many(moves)


def _place(
    users: dict[uuid.UUID, UserTimezone],
    fact: Fact,
    changes: _Changes,
    floating: list[dict[str, object]],
) -> None:
    if fact.usertz is not None:
        day = local_date(fact.occurred_at, fact.usertz)
    else:
        day = local_date(fact.occurred_at, users[fact.user_id].timezone or "UTC")
        floating.append(
            {
                "event_id": fact.event_id,
                "user_id": fact.user_id,
                "kind": fact.kind,
                "task_id": fact.task_id,
                "occurred_at": fact.occurred_at,
                "local_date": day,
            }
        )
    changes.contribute(fact.user_id, fact.kind, fact.task_id, day, +1)
    if fact.kind == "completed" and fact.task_id is not None:
        changes.completions.append(
            {
                "event_id": fact.event_id,
                "user_id": fact.user_id,
                "task_id": fact.task_id,
                "local_date": day,
                "occurred_at": fact.occurred_at,
                "completed_at": fact.completed_at or fact.occurred_at,
                "due_at": fact.due_at,
            }
        )
        changes.completion_days.add((fact.user_id, day))


async def _learn_priorities(
    repo: AnalyticsRepository, facts: Sequence[Fact]
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """Record the priorities that created and changed tasks carry (the latest by time, then
    id, wins); the tasks whose known priority was written (their completed days are
    classified again)."""
    offered: dict[tuple[uuid.UUID, uuid.UUID], KnownPriority] = {}
    for fact in facts:
        if fact.kind not in ("created", "repriced") or fact.task_id is None:
            continue
        if fact.priority is None:
            continue
        key = (fact.user_id, fact.task_id)
        candidate = KnownPriority(fact.priority, fact.occurred_at, fact.event_id)
        best = offered.get(key)
        if best is None or (candidate.time, candidate.event_id) > (best.time, best.event_id):
            offered[key] = candidate
    return await repo.learn_priorities(offered)


def classify(completion: Completion) -> str:
    """Rule 10: on time when completed at or before the due time, late after it."""
    if completion.due_at is None:
        return UNDATED
    return ON_TIME if completion.completed_at <= completion.due_at else LATE


def classified_counts(
    completions: Sequence[Completion], priorities: Mapping[uuid.UUID, str]
) -> tuple[int, int, int, int, int, int]:
    """One day's classified counts from its completion events (rules 10 and 11)."""
    first: dict[uuid.UUID, Completion] = {}
    for completion in completions:
        known = first.get(completion.task_id)
        if known is None or (completion.occurred_at, completion.event_id) < (
            known.occurred_at,
            known.event_id,
        ):
            first[completion.task_id] = completion
    outcomes = [classify(completion) for completion in first.values()]
    levels = [priorities.get(task_id, DEFAULT_PRIORITY) for task_id in first]
    low, normal, high = (levels.count(level) for level in PRIORITIES)
    return outcomes.count(ON_TIME), outcomes.count(LATE), outcomes.count(UNDATED), low, normal, high


async def _classify(
    repo: AnalyticsRepository, changes: _Changes, repriced: Sequence[tuple[uuid.UUID, uuid.UUID]]
) -> None:
    """Recompute the classified counts of every day whose completions or priorities changed."""
    by_day: dict[DayKey, list[Completion]] = {day: [] for day in changes.completion_days}
    priorities: dict[uuid.UUID, dict[uuid.UUID, str]] = defaultdict(dict)
    found = await repo.completions_to_classify(sorted(changes.completion_days), sorted(repriced))
    for completion, priority in found:
        by_day.setdefault((completion.user_id, completion.local_date), []).append(completion)
        if priority is not None:
            priorities[completion.user_id][completion.task_id] = priority
    await repo.set_classified(
        {
            (user_id, day): classified_counts(completions, priorities[user_id])
            for (user_id, day), completions in by_day.items()
        }
    )


def _presence(after: int, delta: int) -> int:
    """+1 when a count turned positive, -1 when it stopped being positive, else 0."""
    return (after > 0) - (after - delta > 0)


async def _write(repo: AnalyticsRepository, changes: _Changes) -> dict[uuid.UUID, set[date]]:
    """Write the batch's counts and streak days; the days whose ``tasks_completed`` changed."""
    # Distinct task ids: only the first event of a task on a day (or the last one leaving) counts.
    task_deltas = {key: delta for key, delta in changes.tasks.items() if delta}
    days: dict[DayKey, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for key, counts in changes.logins.items():
        days[key][0] += counts[0]
        days[key][1] += counts[1]
    for (user_id, day, kind, task_id), after in (await repo.bump_tasks(task_deltas)).items():
        moved = _presence(after, task_deltas[(user_id, day, kind, task_id)])
        if moved:
            days[(user_id, day)][2 if kind == CREATED else 3] += moved
    day_deltas = {key: DayDelta(*counts) for key, counts in days.items() if any(counts)}
    streak_days: dict[RunKey, dict[date, bool]] = defaultdict(dict)
    completed_days: dict[uuid.UUID, set[date]] = defaultdict(set)
    for (user_id, day), (login_events, completed) in (await repo.bump_days(day_deltas)).items():
        delta = day_deltas[(user_id, day)]
        if delta.tasks_completed:
            completed_days[user_id].add(day)
        for kind, after, change in (
            (LOGIN, login_events, delta.login_events),
            (COMPLETION, completed, delta.tasks_completed),
        ):
            moved = _presence(after, change)
            if moved:
                streak_days[(user_id, kind)][day] = moved > 0
    await apply_streak_days(repo, streak_days)
    return completed_days


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def sunday_of(monday: date) -> date:
    """The last day of the ISO week starting on ``monday`` (the calendar's end, in 9999)."""
    return monday + timedelta(days=6) if monday <= date.max - timedelta(days=6) else date.max


def goal_on(history: Sequence[GoalRow], day: date) -> GoalRow | None:
    """The goals in effect on ``day``: the row set last on or before it."""
    index = bisect_right([row.effective_date for row in history], day) - 1
    return history[index] if index >= 0 else None


async def refresh_goal_days(repo: AnalyticsRepository, days: Mapping[uuid.UUID, set[date]]) -> None:
    """Recompute whether the given days, and their ISO weeks, met the goals in effect then.

    A day meets the daily goal when its ``tasks_completed`` reaches the goal in effect on
    it; a week meets the weekly goal when its sum reaches the goal in effect on its
    Sunday. Users without goals have no goal runs and cost one query.
    """
    histories = await repo.goals_of(sorted(user for user, found in days.items() if found))
    if not histories:
        return
    ranges = {
        user_id: [
            (monday, sunday_of(monday))
            for monday in sorted({monday_of(day) for day in days[user_id]})
        ]
        for user_id in histories
    }
    completed = await repo.completed_in(ranges)
    week_sums: dict[DayKey, int] = defaultdict(int)
    for (user_id, day), count in completed.items():
        week_sums[(user_id, monday_of(day))] += count
    changes: dict[RunKey, dict[date, bool]] = defaultdict(dict)
    for user_id, history in histories.items():
        for day in days[user_id]:
            goal = goal_on(history, day)
            target = None if goal is None else goal.daily_tasks
            count = completed.get((user_id, day), 0)
            changes[(user_id, DAILY_GOAL)][day] = target is not None and count >= target
        for monday, sunday in ranges[user_id]:
            goal = goal_on(history, sunday)
            target = None if goal is None else goal.weekly_tasks
            total = week_sums.get((user_id, monday), 0)
            changes[(user_id, WEEKLY_GOAL)][monday] = target is not None and total >= target
    await apply_streak_days(repo, changes)


def step_of(kind: str) -> timedelta:
    """Runs of weekly goals step by weeks (their Mondays), every other kind by days."""
    return ONE_WEEK if kind == WEEKLY_GOAL else ONE_DAY


async def apply_streak_days(
    repo: AnalyticsRepository, changes: Mapping[RunKey, Mapping[date, bool]]
) -> None:
    """Make days active (True) or inactive (False) in the runs of (user, kind), set-based.

    Only runs ending on or after the day before a (user, kind)'s earliest changed day can
    change (a run merges only with a neighbour); they are read in one query, recomputed in
    Python with their ``longest_before`` and written back as deletes plus inserts of what
    differs.
    """
    changes = {key: days for key, days in changes.items() if days}
    if not changes:
        return
    cuts = _cuts({key: min(days) - step_of(key[1]) for key, days in changes.items()})
    window = await repo.runs_ending_from(cuts)
    # The first run of the window knows the longest before it; without one, ask for it.
    before = await repo.longest_ending_before(
        {key: cut for key, cut in cuts.items() if not window.get(key)}
    )
    deleted: list[tuple[uuid.UUID, str, date]] = []
    inserted: list[tuple[uuid.UUID, str, Run]] = []
    for key, days in sorted(changes.items()):
        old = window.get(key, [])
        base = old[0].longest_before if old else before.get(key, 0)
        step = step_of(key[1])
        spans = [(run.start, run.end) for run in old]
        for day, active in sorted(days.items()):
            _toggle(spans, day, active, step)
        new = _with_longest(spans, base, step)
        old_by_start = {run.start: run for run in old}
        new_by_start = {run.start: run for run in new}
        user_id, kind = key
        deleted += [
            (user_id, kind, start)
            for start, run in old_by_start.items()
            if new_by_start.get(start) != run
        ]
        inserted += [
            (user_id, kind, run)
            for start, run in new_by_start.items()
            if old_by_start.get(start) != run
        ]
    await repo.replace_runs(deleted, inserted)


RECENT = timedelta(days=7)


def _cuts(cuts: Mapping[RunKey, date]) -> dict[RunKey, date]:
    """At most two distinct cuts, so the window query keeps one of two cached shapes.

    The (user, kind)s whose changes are recent (live traffic: today and yesterday) share
    the earliest of their cuts; the others (late events, a replay) share theirs. A late
    event then widens only its own group's read, not every user's.
    """
    newest = max(cuts.values())
    recent = [cut for cut in cuts.values() if cut >= newest - RECENT]
    old = [cut for cut in cuts.values() if cut < newest - RECENT]
    recent_cut = min(recent)
    old_cut = min(old, default=recent_cut)
    return {key: recent_cut if cut >= newest - RECENT else old_cut for key, cut in cuts.items()}


def _toggle(
    spans: list[tuple[date, date]], day: date, active: bool, step: timedelta = ONE_DAY
) -> None:
    """Add ``day`` to (or take it out of) sorted disjoint, non-adjacent ``(start, end)`` spans
    whose members are ``step`` apart."""
    index = bisect_right(spans, (day, date.max)) - 1  # the span starting on or before day
    inside = index >= 0 and spans[index][1] >= day
    if not active:
        if not inside:
            return
        start, end = spans[index]
        pieces = []
        if start < day:
            pieces.append((start, day - step))
        if day < end:
            pieces.append((day + step, end))
        spans[index : index + 1] = pieces
        return
    if inside:
        return
    left = index >= 0 and spans[index][1] == day - step
    right = index + 1 < len(spans) and spans[index + 1][0] == day + step
    if left and right:
        spans[index : index + 2] = [(spans[index][0], spans[index + 1][1])]
    elif left:
        spans[index] = (spans[index][0], day)
    elif right:
        spans[index + 1] = (day, spans[index + 1][1])
    else:
        spans.insert(index + 1, (day, day))


def _with_longest(
    spans: Sequence[tuple[date, date]], longest: int, step: timedelta = ONE_DAY
) -> list[Run]:
    runs: list[Run] = []
    for start, end in spans:
        length = (end - start) // step + 1
        runs.append(Run(start, end, length, longest))
        longest = max(longest, length)
    return runs


async def add_streak_day(
    repo: AnalyticsRepository, user_id: uuid.UUID, kind: str, day: date
) -> None:
    """Make ``day`` part of the runs, merging with its neighbours (any arrival order)."""
    await apply_streak_days(repo, {(user_id, kind): {day: True}})


async def remove_streak_day(
    repo: AnalyticsRepository, user_id: uuid.UUID, kind: str, day: date
) -> None:
    """Take ``day`` out of its run, splitting it in two when it was inside."""
    await apply_streak_days(repo, {(user_id, kind): {day: False}})


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


async def caller_timezone(
    repo: AnalyticsRepository, user_id: uuid.UUID, token_timezone: str
) -> str:
    """§1: the user's last known timezone (rule 1), else the token's ``tz``."""
    return await repo.user_timezone(user_id) or token_timezone


async def get_streaks(
    repo: AnalyticsRepository, *, user_id: uuid.UUID, token_timezone: str, now: datetime
) -> StreaksPublic:
    timezone = await caller_timezone(repo, user_id, token_timezone)
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


def is_active(day: Day) -> bool:
    """Rule 6: any login (either method), creation or completion."""
    return day.login_events > 0 or day.tasks_created > 0 or day.tasks_completed > 0


def totals_of(days: Sequence[Day]) -> WeekTotals:
    """Rules 3 to 6, 10 and 11 summed over day rows (one pass: a range holds up to 366)."""
    logins = created = completed = active = on_time = late = undated = low = normal = high = 0
    for day in days:
        logins += day.logins
        created += day.tasks_created
        completed += day.tasks_completed
        active += is_active(day)
        on_time += day.completed_on_time
        late += day.completed_late
        undated += day.completed_undated
        low += day.completed_low
        normal += day.completed_normal
        high += day.completed_high
    return WeekTotals(
        logins=logins,
        tasks_created=created,
        tasks_completed=completed,
        active_days=active,
        completed_on_time=on_time,
        completed_late=late,
        completed_undated=undated,
        completed_by_priority=CompletedByPriority(low=low, normal=normal, high=high),
    )


async def get_weekly_report(
    repo: AnalyticsRepository,
    *,
    user_id: uuid.UUID,
    token_timezone: str,
    week: str | None,
    now: datetime,
) -> WeeklyReport:
    timezone = await caller_timezone(repo, user_id, token_timezone)
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
        totals=totals_of(this_week),
        days=days,
        streaks=WeekStreaks(login=login, completion=completion),
        previous_week=PreviousWeek(
            week=week_label(previous_start), totals=totals_of(previous_week)
        ),
        generated_at=now,
    )
