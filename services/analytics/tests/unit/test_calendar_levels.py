"""Calendar levels (docs/spec/analytics.md, rule 12): nearest-rank quartiles of non-zero days."""

from __future__ import annotations

import itertools
import math

from hypothesis import given
from hypothesis import strategies as st

from momentum_analytics.reports import level_of, quartile_thresholds


def test_a_year_without_completions_is_all_level_zero() -> None:
    assert quartile_thresholds([0, 0, 0]) is None
    assert level_of(0, None) == 0


def test_a_single_completion_day_is_level_one() -> None:
    thresholds = quartile_thresholds([0, 7, 0])
    assert thresholds == (7, 7, 7)
    assert level_of(7, thresholds) == 1


def test_four_distinct_days_take_the_four_levels() -> None:
    thresholds = quartile_thresholds([4, 1, 3, 2])
    assert thresholds == (1, 2, 3)
    assert [level_of(count, thresholds) for count in (1, 2, 3, 4)] == [1, 2, 3, 4]


def test_equal_days_share_level_one() -> None:
    thresholds = quartile_thresholds([5] * 10)
    assert {level_of(5, thresholds)} == {1}


def test_a_value_equal_to_a_threshold_takes_the_lower_level() -> None:
    thresholds = quartile_thresholds([1, 1, 2, 2, 3, 3, 8, 8])
    assert thresholds == (1, 2, 3)
    assert [level_of(count, thresholds) for count in (1, 2, 3, 8)] == [1, 2, 3, 4]


@given(st.lists(st.integers(0, 50), max_size=60))
def test_levels_grow_with_the_count_and_about_a_quarter_is_above_each_threshold(
    counts: list[int],
) -> None:
    thresholds = quartile_thresholds(counts)
    levels = [level_of(count, thresholds) for count in counts]
    ordered = sorted(zip(counts, levels, strict=True))
    assert all(a[1] <= b[1] for a, b in itertools.pairwise(ordered))
    assert all((level == 0) == (count == 0) for count, level in zip(counts, levels, strict=True))
    non_zero = [count for count in counts if count]
    if thresholds is not None:
        for k, threshold in enumerate(thresholds, start=1):
            # Nearest rank: at least ceil(k·n/4) of the non-zero days are at or below q_k.
            assert sum(1 for count in non_zero if count <= threshold) >= math.ceil(
                k * len(non_zero) / 4
            )
