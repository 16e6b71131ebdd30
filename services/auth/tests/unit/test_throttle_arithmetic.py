"""The throttle's arithmetic: sliding windows, growing delays, the longest wait wins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from momentum_auth import throttle

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ages = st.lists(st.integers(min_value=0, max_value=3600), max_size=30)


def entries(seconds_ago: list[int]) -> list[datetime]:
    return sorted(NOW - timedelta(seconds=age) for age in seconds_ago)


@settings(max_examples=200, deadline=None)
@given(
    seconds_ago=ages,
    limit=st.integers(min_value=1, max_value=10),
    window=st.integers(min_value=1, max_value=1800),
)
def test_a_window_refuses_exactly_while_limit_entries_are_in_it(
    seconds_ago: list[int], limit: int, window: int
) -> None:
    times = entries(seconds_ago)
    wait = throttle.window_retry_after(times, limit=limit, window_seconds=window, now=NOW)
    in_window = [at for at in times if at > NOW - timedelta(seconds=window)]
    if len(in_window) < limit:
        assert wait is None
        return
    assert wait is not None
    assert 1 <= wait <= window
    # After the wait, fewer than limit entries are left in the window: allowed again.
    later = NOW + timedelta(seconds=wait)
    assert throttle.window_retry_after(times, limit=limit, window_seconds=window, now=later) is None
    # One second earlier it was still refused (unless the wait is the one-second minimum).
    if wait > 1:
        earlier = later - timedelta(seconds=1)
        assert (
            throttle.window_retry_after(times, limit=limit, window_seconds=window, now=earlier)
            is not None
        )


@settings(max_examples=200, deadline=None)
@given(
    entries_count=st.integers(min_value=0, max_value=200),
    free=st.integers(min_value=0, max_value=10),
    base=st.integers(min_value=1, max_value=30),
    ceiling=st.integers(min_value=1, max_value=3600),
)
def test_the_delay_is_free_then_doubles_up_to_the_ceiling(
    entries_count: int, free: int, base: int, ceiling: int
) -> None:
    def delay(count: int) -> int:
        return throttle.progressive_delay_seconds(
            count, free=free, base_delay_seconds=base, max_delay_seconds=ceiling
        )

    value = delay(entries_count)
    if entries_count < free:
        assert value == 0
        return
    assert value == min(ceiling, base * 2 ** (entries_count - free))
    assert delay(entries_count + 1) in (min(ceiling, 2 * value), ceiling)
    assert value <= ceiling


@settings(max_examples=100, deadline=None)
@given(seconds_ago=st.lists(st.integers(min_value=0, max_value=100), min_size=1, max_size=8))
def test_a_progressive_rule_waits_from_the_latest_entry(seconds_ago: list[int]) -> None:
    times = entries(seconds_ago)
    wait = throttle.progressive_retry_after(
        times, free=0, base_delay_seconds=60, max_delay_seconds=10_000, now=NOW
    )
    allowed_at = max(times) + timedelta(seconds=min(10_000, 60 * 2 ** len(times)))
    assert wait == max(1, int((allowed_at - NOW).total_seconds()))


def test_the_longest_wait_of_all_rules_is_the_answer() -> None:
    rules = [
        throttle.Rule("a", limit=1, window_seconds=100),
        throttle.Rule("b", limit=1, window_seconds=500),
        throttle.Rule("c", limit=5, window_seconds=1000),
    ]
    recent = {"a": [NOW - timedelta(seconds=10)], "b": [NOW - timedelta(seconds=20)]}
    assert throttle.retry_after(rules, recent, now=NOW) == 480
    assert throttle.retry_after(rules, {"c": [NOW] * 4}, now=NOW) is None
    assert throttle.retry_after([], recent, now=NOW) is None
    assert throttle.longest_window_seconds(rules) == 1000
    assert throttle.longest_window_seconds([]) == 0


def test_a_fraction_of_a_second_left_is_a_one_second_wait() -> None:
    times = [NOW - timedelta(seconds=99, milliseconds=999)]
    assert throttle.window_retry_after(times, limit=1, window_seconds=100, now=NOW) == 1
