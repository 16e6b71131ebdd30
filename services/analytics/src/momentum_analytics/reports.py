"""Monthly, range and calendar reports (docs/spec/analytics.md §5), from day rows only."""

from __future__ import annotations

import bisect
import calendar
import math
import re
import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Literal

from momentum_analytics.repository import AnalyticsRepository, Day
from momentum_analytics.schemas import (
    Bucket,
    Calendar,
    CalendarDay,
    DayReport,
    MonthlyReport,
    PreviousMonth,
    RangeReport,
    WeekStreaks,
)
from momentum_analytics.service import (
    caller_timezone,
    is_active,
    monday_of,
    streaks,
    sunday_of,
    today_in,
    totals_of,
)
from momentum_shared.errors import UnprocessableEntity

Group = Literal["day", "week", "month"]
MAX_RANGE_DAYS = 366
_MONTH = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")


def invalid(parameter: str, detail: str, value: object) -> UnprocessableEntity:
    return UnprocessableEntity(
        detail,
        extra={
            "errors": [
                {
                    "loc": ["query", parameter],
                    "msg": detail,
                    "type": "value_error",
                    "input": value,
                }
            ]
        },
    )


def day_reports(start: date, end: date, rows: Sequence[Day]) -> list[DayReport]:
    """One entry per date from ``start`` to ``end``, zeros where there is no row."""
    by_date = {row.local_date: row for row in rows}
    found: list[DayReport] = []
    day = start
    while day <= end:
        row = by_date.get(day)
        found.append(
            DayReport(
                date=day,
                logins=row.logins if row else 0,
                tasks_created=row.tasks_created if row else 0,
                tasks_completed=row.tasks_completed if row else 0,
            )
        )
        if day == date.max:
            break
        day += timedelta(days=1)
    return found


def month_bounds(year: int, month: int) -> tuple[date, date]:
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def month_label(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def parse_month(value: str) -> date:
    """The first day of a month ``YYYY-MM`` (years 0001 to 9999)."""
    match = _MONTH.fullmatch(value)
    if match is None or int(match[1]) == 0:
        raise invalid("month", "month must be a month like 2026-11", value)
    return date(int(match[1]), int(match[2]), 1)


async def get_monthly_report(
    repo: AnalyticsRepository,
    *,
    user_id: uuid.UUID,
    token_timezone: str,
    month: str | None,
    now: datetime,
) -> MonthlyReport:
    timezone = await caller_timezone(repo, user_id, token_timezone)
    today = today_in(now, timezone)
    first = parse_month(month) if month is not None else today.replace(day=1)
    if first > today:
        raise invalid("month", f"{month} is after the current month ({month_label(today)})", month)
    if first.year == 1 and first.month == 1:
        raise invalid("month", f"{month} has no previous month", month)
    start, end = month_bounds(first.year, first.month)
    previous_start, _ = month_bounds(*_previous_month(first))
    rows = await repo.days(user_id, previous_start, end)
    this_month = [row for row in rows if row.local_date >= start]
    previous = [row for row in rows if row.local_date < start]
    login, completion = await streaks(repo, user_id, min(end, today))
    return MonthlyReport(
        user_id=user_id,
        month=month_label(start),
        timezone=timezone,
        start_date=start,
        end_date=end,
        totals=totals_of(this_month),
        days=day_reports(start, end, this_month),
        streaks=WeekStreaks(login=login, completion=completion),
        previous_month=PreviousMonth(month=month_label(previous_start), totals=totals_of(previous)),
        generated_at=now,
    )


def _previous_month(first: date) -> tuple[int, int]:
    return (first.year, first.month - 1) if first.month > 1 else (first.year - 1, 12)


def buckets_of(start: date, end: date, group: Group) -> list[tuple[date, date]]:
    """The spans of ``group`` (days, ISO weeks, calendar months) covering the range, clipped."""
    spans: list[tuple[date, date]] = []
    day = start
    while day <= end:
        if group == "day":
            last = day
        elif group == "week":
            last = min(sunday_of(monday_of(day)), end)
        else:
            last = min(month_bounds(day.year, day.month)[1], end)
        spans.append((day, last))
        if last == date.max:
            break
        day = last + timedelta(days=1)
    return spans


async def get_range_report(
    repo: AnalyticsRepository,
    *,
    user_id: uuid.UUID,
    token_timezone: str,
    start: date,
    end: date,
    group: Group,
) -> RangeReport:
    if start > end:
        raise invalid("from", f"from ({start}) is after to ({end})", start.isoformat())
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise invalid("to", f"the range covers more than {MAX_RANGE_DAYS} days", end.isoformat())
    timezone = await caller_timezone(repo, user_id, token_timezone)
    spans = buckets_of(start, end, group)
    if group == "day":
        rows = await repo.days(user_id, start, end)
        groups = [(row, int(is_active(row))) for row in rows]
    else:
        # Summed per week or month by the database: the rows read do not grow with the range.
        groups = await repo.grouped_days(user_id, start, end, group)
    sums = [[0, 0, 0, 0] for _ in spans]  # logins, created, completed, active days
    firsts = [first for first, _ in spans]
    for row, active in groups:
        bucket = sums[bisect.bisect_right(firsts, row.local_date) - 1]
        bucket[0] += row.logins
        bucket[1] += row.tasks_created
        bucket[2] += row.tasks_completed
        bucket[3] += active
    totals = totals_of([row for row, _ in groups])
    return RangeReport(
        from_=start,
        to=end,
        group=group,
        timezone=timezone,
        buckets=[
            Bucket(
                start=first,
                end=last,
                logins=logins,
                tasks_created=created,
                tasks_completed=completed,
                active_days=active,
            )
            for (first, last), (logins, created, completed, active) in zip(spans, sums, strict=True)
        ],
        totals=totals.model_copy(update={"active_days": sum(active for _, active in groups)}),
    )


def quartile_thresholds(counts: Sequence[int]) -> tuple[int, int, int] | None:
    """Nearest-rank quartiles of the non-zero counts: ``v[ceil(k·n/4)]`` for k = 1, 2, 3."""
    values = sorted(count for count in counts if count > 0)
    if not values:
        return None
    n = len(values)
    q1, q2, q3 = (values[math.ceil(k * n / 4) - 1] for k in (1, 2, 3))
    return q1, q2, q3


def level_of(count: int, thresholds: tuple[int, int, int] | None) -> int:
    """0 without a completion; else the first quartile band the count falls in (1 to 4)."""
    if count <= 0 or thresholds is None:
        return 0
    for level, threshold in enumerate(thresholds, start=1):
        if count <= threshold:
            return level
    return 4


async def get_calendar(
    repo: AnalyticsRepository,
    *,
    user_id: uuid.UUID,
    token_timezone: str,
    year: int | None,
    now: datetime,
) -> Calendar:
    timezone = await caller_timezone(repo, user_id, token_timezone)
    year = year if year is not None else today_in(now, timezone).year
    start, end = date(year, 1, 1), date(year, 12, 31)
    rows = await repo.days(user_id, start, end)
    thresholds = quartile_thresholds([row.tasks_completed for row in rows])
    by_date = {row.local_date: row for row in rows}
    days: list[CalendarDay] = []
    for offset in range((end - start).days + 1):
        day = start + timedelta(days=offset)
        row = by_date.get(day)
        completed = row.tasks_completed if row else 0
        days.append(
            CalendarDay(
                date=day,
                tasks_completed=completed,
                tasks_created=row.tasks_created if row else 0,
                logins=row.logins if row else 0,
                level=level_of(completed, thresholds),
            )
        )
    return Calendar(year=year, timezone=timezone, days=days)
