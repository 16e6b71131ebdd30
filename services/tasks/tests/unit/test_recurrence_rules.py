"""The RRULE subset and the next occurrence (momentum_tasks.recurrence), without a database."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from momentum_tasks.recurrence import Rule, RuleError, next_occurrence, on_the_wall, parse

BERLIN = ZoneInfo("Europe/Berlin")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def series(
    rule: Rule, start: datetime, completions: int, zone: ZoneInfo = BERLIN
) -> list[datetime | None]:
    """The due dates after each of ``completions`` completions (None once it is over)."""
    due: list[datetime | None] = []
    current: datetime | None = start
    for number in range(1, completions + 1):
        assert current is not None
        current = next_occurrence(rule, start=start, after=current, completed=number, zone=zone)
        due.append(current)
        if current is None:
            break
    return due


def test_a_rule_is_kept_upper_cased_and_split_into_expansion_and_bounds() -> None:
    rule = parse("  freq=monthly;byday=-1fr;count=4 ")
    assert rule == Rule(
        text="FREQ=MONTHLY;BYDAY=-1FR;COUNT=4",
        expansion="FREQ=MONTHLY;BYDAY=-1FR",
        count=4,
        until=None,
    )
    assert parse("FREQ=DAILY;UNTIL=20261231").until == date(2026, 12, 31)
    assert parse("FREQ=DAILY;UNTIL=20261231T170000Z").until == utc(2026, 12, 31, 17)


@pytest.mark.parametrize(
    "value",
    [
        "FREQ=DAILY",
        "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE,FR",
        "FREQ=MONTHLY;BYDAY=1MO,+2TU,-1FR",
        "FREQ=MONTHLY;BYMONTHDAY=1,15,-1",
        "FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13",
        "FREQ=YEARLY;INTERVAL=1000;COUNT=10000",
        "INTERVAL=3;FREQ=DAILY",
    ],
)
def test_the_subset_is_accepted(value: str) -> None:
    assert parse(value).text == value


@pytest.mark.parametrize(
    ("value", "part"),
    [
        ("FREQ=DAILY;BYHOUR=9", "BYHOUR"),
        ("FREQ=DAILY;BYMINUTE=5", "BYMINUTE"),
        ("FREQ=MONTHLY;BYSETPOS=-1;BYDAY=MO", "BYSETPOS"),
        ("FREQ=WEEKLY;WKST=SU", "WKST"),
        ("FREQ=YEARLY;BYMONTH=3", "BYMONTH"),
        ("FREQ=MINUTELY", "FREQ"),
        ("BYDAY=MO", "FREQ"),
        ("FREQ=DAILY;FREQ=DAILY", "FREQ"),
        ("FREQ=DAILY;INTERVAL=1001", "INTERVAL"),
        ("FREQ=DAILY;INTERVAL=-1", "INTERVAL"),
        ("FREQ=DAILY;BYDAY=MO", "BYDAY"),
        ("FREQ=YEARLY;BYDAY=1MO", "BYDAY"),
        ("FREQ=WEEKLY;BYDAY=2TU", "BYDAY"),
        ("FREQ=MONTHLY;BYDAY=0MO", "BYDAY"),
        ("FREQ=MONTHLY;BYDAY=MO,", "BYDAY"),
        ("FREQ=WEEKLY;BYMONTHDAY=1", "BYMONTHDAY"),
        ("FREQ=MONTHLY;BYMONTHDAY=0", "BYMONTHDAY"),
        ("FREQ=MONTHLY;BYDAY=5MO;BYMONTHDAY=1", "BYMONTHDAY"),
        ("FREQ=DAILY;COUNT=10001", "COUNT"),
        ("FREQ=DAILY;UNTIL=20261231T170000", "UNTIL"),
        ("FREQ=DAILY;UNTIL=20260230", "UNTIL"),
        ("FREQ=DAILY;COUNT=2;UNTIL=20261231", "UNTIL"),
        ("FREQ=DAILY;DTSTART=20261201", "DTSTART"),
        ("RRULE:FREQ=DAILY", "RRULE"),
        ("FREQ=DAILY;COUNT=", "COUNT"),
        ("FREQ=DAILY; COUNT=2", None),
        ("", None),
        ("F" * 501, None),
    ],
)
def test_anything_else_is_refused_naming_the_part(value: str, part: str | None) -> None:
    with pytest.raises(RuleError) as refused:
        parse(value)
    assert refused.value.part == part
    if part is not None:
        assert part in str(refused.value)


def test_daily_keeps_the_wall_clock_across_daylight_saving_changes() -> None:
    due = series(parse("FREQ=DAILY"), utc(2026, 3, 28, 8), 2)
    assert due == [utc(2026, 3, 29, 7), utc(2026, 3, 30, 7)]
    due = series(parse("FREQ=DAILY"), utc(2026, 10, 24, 7), 2)
    assert due == [utc(2026, 10, 25, 8), utc(2026, 10, 26, 8)]


def test_a_skipped_time_moves_forward_and_a_repeated_one_is_the_first() -> None:
    assert on_the_wall(datetime(2026, 3, 29, 2, 30), BERLIN) == utc(2026, 3, 29, 1, 30)
    assert on_the_wall(datetime(2026, 10, 25, 2, 30), BERLIN) == utc(2026, 10, 25, 0, 30)
    # A series started in the second 02:30 still continues at 02:30 the next day.
    assert series(parse("FREQ=DAILY"), utc(2026, 10, 25, 1, 30), 1) == [utc(2026, 10, 26, 1, 30)]


def test_monthly_on_the_31st_skips_shorter_months() -> None:
    due = series(parse("FREQ=MONTHLY;BYMONTHDAY=31"), utc(2026, 1, 31, 12), 3, ZoneInfo("UTC"))
    assert due == [utc(2026, 3, 31, 12), utc(2026, 5, 31, 12), utc(2026, 7, 31, 12)]


def test_count_includes_the_first_due_date_even_off_the_rule() -> None:
    # A Tuesday start for a Monday rule: the Tuesday is occurrence 1, then one Monday.
    rule = parse("FREQ=WEEKLY;BYDAY=MO;COUNT=2")
    assert series(rule, utc(2026, 12, 8, 8), 2) == [utc(2026, 12, 14, 8), None]


def test_count_counts_from_the_start_not_from_the_current_occurrence() -> None:
    rule = parse("FREQ=DAILY;COUNT=3")
    start = utc(2026, 12, 7, 8)
    after = utc(2026, 12, 8, 8)
    assert next_occurrence(rule, start=start, after=after, completed=2, zone=BERLIN) == utc(
        2026, 12, 9, 8
    )
    assert next_occurrence(rule, start=start, after=after, completed=3, zone=BERLIN) is None


def test_until_bounds_by_instant_or_by_local_day() -> None:
    by_instant = parse("FREQ=DAILY;UNTIL=20261208T075959Z")
    assert series(by_instant, utc(2026, 12, 7, 8), 1) == [None]
    by_day = parse("FREQ=DAILY;UNTIL=20261208")
    assert series(by_day, utc(2026, 12, 6, 23, 30), 2) == [utc(2026, 12, 7, 23, 30), None]


def test_no_occurrence_is_left_near_the_end_of_time() -> None:
    rule = parse("FREQ=YEARLY")
    start = utc(9999, 1, 1, 12)
    assert next_occurrence(rule, start=start, after=start, completed=1, zone=BERLIN) is None
    never = parse("FREQ=MONTHLY;INTERVAL=12;BYMONTHDAY=31")  # every April: no 31st, ever
    april = utc(2026, 4, 30, 12)
    assert next_occurrence(never, start=april, after=april, completed=1, zone=BERLIN) is None
