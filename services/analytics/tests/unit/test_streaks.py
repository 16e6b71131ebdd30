"""Streak arithmetic (docs/spec/analytics.md rule 8) from the runs of a set of days."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from momentum_analytics.repository import Run
from momentum_analytics.service import runs_of, streak_as_of

ONE_DAY = timedelta(days=1)
BASE = date(2026, 1, 1)
offsets = st.sets(st.integers(min_value=0, max_value=60), max_size=40)


def days_from(values: set[int]) -> list[date]:
    return [BASE + timedelta(days=value) for value in values]


def counted_back(days: set[date], end: date) -> int:
    length = 0
    while end - timedelta(days=length) in days:
        length += 1
    return length


def brute_force(days: set[date], as_of: date) -> tuple[int, int, date | None]:
    """(current, longest, last active day) straight from the day set, as the rule says."""
    seen = {day for day in days if day <= as_of}
    if as_of in seen:
        current = counted_back(seen, as_of)
    elif as_of - ONE_DAY in seen:
        current = counted_back(seen, as_of - ONE_DAY)  # yesterday's streak is still alive
    else:
        current = 0
    longest = max((counted_back(seen, day) for day in seen), default=0)
    return current, longest, max(seen, default=None)


def run_at_or_before(runs: list[Run], as_of: date) -> Run | None:
    """What the repository answers: the run that starts last on or before ``as_of``."""
    candidates = [run for run in runs if run.start <= as_of]
    return candidates[-1] if candidates else None


@settings(max_examples=200, deadline=None)
@given(values=offsets)
def test_runs_are_maximal_disjoint_and_know_the_longest_before(values: set[int]) -> None:
    days = days_from(values)
    runs = runs_of(days + days)  # duplicates do not matter
    covered = [run.start + timedelta(days=i) for run in runs for i in range(run.length)]
    assert covered == sorted(set(days))
    longest = 0
    for previous, run in zip([None, *runs], runs, strict=False):
        assert (run.end - run.start).days + 1 == run.length
        if previous is not None:
            assert run.start - previous.end > ONE_DAY  # a gap: otherwise one run
            longest = max(longest, previous.length)
        assert run.longest_before == longest


@settings(max_examples=300, deadline=None)
@given(values=offsets, as_of_offset=st.integers(min_value=-2, max_value=64))
def test_the_streak_as_of_any_day_matches_counting_the_days(
    values: set[int], as_of_offset: int
) -> None:
    days = set(days_from(values))
    as_of = BASE + timedelta(days=as_of_offset)
    streak = streak_as_of(run_at_or_before(runs_of(sorted(days)), as_of), as_of)
    assert (streak.current, streak.longest, streak.last_active_date) == brute_force(days, as_of)
    assert streak.current <= streak.longest


def test_no_run_is_no_streak() -> None:
    streak = streak_as_of(None, BASE)
    assert (streak.current, streak.longest, streak.last_active_date) == (0, 0, None)


def test_yesterday_keeps_the_streak_and_the_day_before_breaks_it() -> None:
    run = Run(BASE, BASE + 2 * ONE_DAY, 3, 5)  # three days, after a five-day run
    today = BASE + 3 * ONE_DAY
    assert streak_as_of(run, today).current == 3
    assert streak_as_of(run, today).longest == 5
    assert streak_as_of(run, today + ONE_DAY).current == 0
    assert streak_as_of(run, today + ONE_DAY).last_active_date == BASE + 2 * ONE_DAY


def test_inside_a_run_only_the_days_up_to_as_of_count() -> None:
    run = Run(BASE, BASE + 9 * ONE_DAY, 10, 2)
    streak = streak_as_of(run, BASE + 3 * ONE_DAY)
    assert (streak.current, streak.longest, streak.last_active_date) == (4, 4, BASE + 3 * ONE_DAY)
