"""Partials merge into the exact aggregation over a period's events, whatever the windows.

The expected values come from the business rule (docs/rating.md, "What a meter bills"),
computed here by hand from the raw events, never through the code under test.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.domain.accumulators import ACCUMULATORS
from streams.domain.meters import Aggregation
from streams.domain.partials import Partial, merge_all, partial_of
from streams.domain.windows import WindowSize, window_start

T = datetime(2028, 2, 29, 10, 5, tzinfo=UTC)


def digest(i: int) -> bytes:
    return i.to_bytes(16, "big")


# The repro: u1 at 10:05, u2 at 10:10, u1 at 11:05; values 1, 1 and 4.
EVENTS = [
    (T, "u1", D(1)),
    (T + timedelta(minutes=5), "u2", D(1)),
    (T + timedelta(hours=1), "u1", D(4)),
]
RULE = {  # per docs/rating.md, from the three events above
    Aggregation.SUM: D(6),
    Aggregation.COUNT: D(3),
    Aggregation.MIN: D(1),
    Aggregation.MAX: D(4),
    Aggregation.AVG: D(2),  # 6 / 3, not the mean of window means (1 and 4: 2.5)
    Aggregation.UNIQUE_COUNT: D(2),  # u1 and u2: two seats, not three user-hours
    Aggregation.LATEST: D(4),
}


def windowed(aggregation: Aggregation, size: WindowSize) -> list[Partial]:
    """The events through the window stage's accumulators, one partial per window."""
    windows: dict[datetime, list[int]] = {}
    for i, (at, _, _) in enumerate(EVENTS):
        windows.setdefault(window_start(at, size), []).append(i)
    out = []
    for members in windows.values():
        acc = ACCUMULATORS[aggregation]()
        for i in members:
            at, user, value = EVENTS[i]
            acc.add(user if aggregation is Aggregation.UNIQUE_COUNT else value, at, digest(i))
        out.append(partial_of(aggregation, acc, len(members)))
    return out


@pytest.mark.parametrize("size", list(WindowSize))
@pytest.mark.parametrize("aggregation", list(Aggregation))
def test_the_period_quantity_does_not_depend_on_the_window_size(
    aggregation: Aggregation, size: WindowSize
) -> None:
    assert merge_all(aggregation, windowed(aggregation, size)).quantity() == RULE[aggregation]


@pytest.mark.parametrize("aggregation", list(Aggregation))
def test_late_events_merge_like_on_time_ones(aggregation: Aggregation) -> None:
    """The last event arriving late (a partial of its own) bills the same."""
    on_time = windowed(aggregation, WindowSize.MINUTE)[:2]
    at, user, value = EVENTS[2]
    late = Partial.of_event(
        aggregation, user if aggregation is Aggregation.UNIQUE_COUNT else value, at, digest(2)
    )
    assert merge_all(aggregation, [*on_time, late]).quantity() == RULE[aggregation]


@pytest.mark.parametrize("aggregation", list(Aggregation))
def test_no_usage_is_zero(aggregation: Aggregation) -> None:
    assert merge_all(aggregation, []).quantity() == 0


def test_latest_ties_on_time_break_by_digest_not_arrival() -> None:
    a = Partial.of_event(Aggregation.LATEST, D(7), T, digest(2))
    b = Partial.of_event(Aggregation.LATEST, D(9), T, digest(1))
    assert a.merge(b).quantity() == b.merge(a).quantity() == 7


def test_avg_rounds_once_half_even_at_nine_places() -> None:
    parts = [Partial.of_event(Aggregation.AVG, D(v), T, digest(i)) for i, v in enumerate("100")]
    assert merge_all(Aggregation.AVG, parts).quantity() == D("0.333333333")
    halves = [Partial.of_event(Aggregation.AVG, D(v), T, b"") for v in ("0.000000001", "0")]
    assert merge_all(Aggregation.AVG, halves).quantity() == D(0)  # 0.0000000005 -> even


def test_merging_different_aggregations_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot merge"):
        Partial(Aggregation.SUM).merge(Partial(Aggregation.MAX))


def test_a_bare_count_cannot_stand_for_distinct_values() -> None:
    with pytest.raises(ValueError, match="distinct values"):
        Partial.of_value(Aggregation.UNIQUE_COUNT, D(3), T)


values = st.decimals(min_value=0, max_value=10**6, places=3)
users = st.sampled_from([f"u{i}" for i in range(12)])


@given(st.lists(st.tuples(st.integers(0, 72 * 60), values, users), min_size=1, max_size=60))
def test_any_split_into_windows_gives_the_rule(events: list[tuple[int, D, str]]) -> None:
    """Random events, any window size: every aggregation equals the rule by hand."""
    rows = [(T + timedelta(minutes=m), v, u, digest(i)) for i, (m, v, u) in enumerate(events)]
    expected = {
        Aggregation.SUM: sum(v for _, v, _, _ in rows),
        Aggregation.COUNT: D(len(rows)),
        Aggregation.MIN: min(v for _, v, _, _ in rows),
        Aggregation.MAX: max(v for _, v, _, _ in rows),
        Aggregation.UNIQUE_COUNT: D(len({u for _, _, u, _ in rows})),
        Aggregation.LATEST: max(rows, key=lambda r: (r[0], r[3]))[1],
    }
    total = sum(v for _, v, _, _ in rows)
    expected[Aggregation.AVG] = (total / len(rows)).quantize(D("1e-9"))
    for size in WindowSize:
        for aggregation, want in expected.items():
            windows: dict[datetime, list[Partial]] = {}
            for at, v, u, d in rows:
                one = Partial.of_event(
                    aggregation, u if aggregation is Aggregation.UNIQUE_COUNT else v, at, d
                )
                windows.setdefault(window_start(at, size), []).append(one)
            merged = [merge_all(aggregation, ps) for ps in windows.values()]
            assert merge_all(aggregation, merged).quantity() == want, (aggregation, size)
