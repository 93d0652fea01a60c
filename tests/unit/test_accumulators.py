"""Exact, mergeable aggregates (streams/domain/accumulators.py, streams/domain/recompute.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.domain.accumulators import ACCUMULATORS, Accumulator, AvgOf, LatestOf
from streams.domain.metering import Contribution
from streams.domain.meters import Aggregation
from streams.domain.recompute import recompute

T0 = datetime(2024, 5, 1, tzinfo=UTC)
NANO = Fraction(1, 10**9)


class Event:
    """One event as an accumulator sees it."""

    def __init__(self, value: Decimal | str, second: int, digest: bytes) -> None:
        self.value, self.time, self.digest = value, T0 + timedelta(seconds=second), digest


def digests() -> st.SearchStrategy[bytes]:
    return st.binary(min_size=16, max_size=16)


quantities = st.builds(
    lambda units, places: Decimal(units).scaleb(-places),
    st.integers(0, 10**12),
    st.integers(0, 9),
)


def events_for(aggregation: Aggregation) -> st.SearchStrategy[list[Event]]:
    value: st.SearchStrategy[Decimal | str] = (
        st.sampled_from(["u1", "u2", "u3", "u4"])
        if aggregation is Aggregation.UNIQUE_COUNT
        else quantities
    )
    return st.lists(
        st.builds(Event, value, st.integers(0, 5), digests()),
        min_size=1,
        max_size=30,
        unique_by=lambda e: e.digest,
    )


def fold(aggregation: Aggregation, events: Sequence[Event]) -> Accumulator:
    acc = ACCUMULATORS[aggregation]()
    for e in events:
        acc.add(e.value, e.time, e.digest)
    return acc


def naive(aggregation: Aggregation, events: Sequence[Event]) -> Fraction:
    """The reference, in exact rationals; AVG rounded half-even to 9 places."""
    numbers = [Fraction(e.value) for e in events if isinstance(e.value, Decimal)]
    match aggregation:
        case Aggregation.SUM:
            return sum(numbers, Fraction(0))
        case Aggregation.COUNT:
            return Fraction(len(events))
        case Aggregation.MIN:
            return min(numbers)
        case Aggregation.MAX:
            return max(numbers)
        case Aggregation.AVG:
            return round(sum(numbers, Fraction(0)) / len(numbers) / NANO) * NANO
        case Aggregation.UNIQUE_COUNT:
            return Fraction(len({e.value for e in events}))
        case Aggregation.LATEST:
            return Fraction(max(events, key=lambda e: (e.time, e.digest)).value)


def as_contributions(aggregation: Aggregation, events: Sequence[Event]) -> list[Contribution]:
    return [Contribution("m", (), e.value, e.time, e.digest, aggregation) for e in events]


def test_the_registry_covers_every_aggregation() -> None:
    assert set(ACCUMULATORS) == set(Aggregation)


# -- against the naive reference, in any order --------------------------------------------


@pytest.mark.parametrize("aggregation", list(Aggregation))
@given(data=st.data())
def test_every_aggregation_matches_the_naive_reference(
    aggregation: Aggregation, data: st.DataObject
) -> None:
    events = data.draw(events_for(aggregation))

    result = fold(aggregation, events).result()

    assert Fraction(result) == naive(aggregation, events)
    assert result.as_tuple().exponent == -9
    assert result == recompute(as_contributions(aggregation, events))


@pytest.mark.parametrize("aggregation", list(Aggregation))
@given(data=st.data())
def test_arrival_order_never_changes_the_result_or_its_spelling(
    aggregation: Aggregation, data: st.DataObject
) -> None:
    events = data.draw(events_for(aggregation))
    shuffled = data.draw(st.permutations(events))

    assert str(fold(aggregation, shuffled).result()) == str(fold(aggregation, events).result())


@pytest.mark.parametrize("aggregation", list(Aggregation))
@given(data=st.data())
def test_merging_disjoint_parts_equals_folding_the_whole(
    aggregation: Aggregation, data: st.DataObject
) -> None:
    events = data.draw(events_for(aggregation))
    cut = data.draw(st.integers(0, len(events)))
    left, right = fold(aggregation, events[:cut]), fold(aggregation, events[cut:])
    other_way = fold(aggregation, events[cut:])

    left.merge(right)
    other_way.merge(fold(aggregation, events[:cut]))

    assert left.result() == other_way.result() == fold(aggregation, events).result()


# -- exactness and the documented edges ---------------------------------------------------


def test_sum_stays_exact_far_beyond_the_default_28_digits() -> None:
    big = Decimal("99999999999999999999999999999.999999999")
    events = [Event(big, 0, bytes([i]) * 16) for i in range(3)] + [
        Event(Decimal("0.000000001"), 0, b"\xff" * 16)
    ]

    assert fold(Aggregation.SUM, events).result() == Decimal(
        "299999999999999999999999999999.999999998"
    )
    # 299..9.999999998 / 4 = 74..9.9999999995: half a unit, to the even neighbour above
    assert str(fold(Aggregation.AVG, events).result()) == "75000000000000000000000000000.000000000"


@pytest.mark.parametrize(
    ("values", "mean"),
    [
        (["1", "1", "0"], "0.666666667"),
        (["1", "0", "0"], "0.333333333"),
        (["0.000000001", "0"], "0.000000000"),  # exactly half a unit: to even (0)
        (["0.000000003", "0"], "0.000000002"),  # exactly half a unit: to even (2)
        (["0.000000005", "0"], "0.000000002"),
        (["0.000000007", "0"], "0.000000004"),
        (["2.5"], "2.500000000"),
        (["10", "20", "30", "40"], "25.000000000"),
    ],
)
def test_avg_rounds_the_exact_mean_half_even_to_nine_places(values: list[str], mean: str) -> None:
    acc = AvgOf()
    for i, v in enumerate(values):
        acc.add(Decimal(v), T0, bytes([i]))

    assert format(acc.result(), "f") == mean


def test_latest_breaks_a_tie_in_time_by_the_greater_digest() -> None:
    low = Event(Decimal(1), 0, b"\x01" * 16)
    high = Event(Decimal(2), 0, b"\x02" * 16)
    earlier = Event(Decimal(3), -1, b"\xff" * 16)

    for order in ([low, high, earlier], [high, low, earlier], [earlier, high, low]):
        assert fold(Aggregation.LATEST, order).result() == Decimal(2)


def test_latest_merge_keeps_the_later_event() -> None:
    a, b = LatestOf(), LatestOf()
    a.add(Decimal(1), T0 + timedelta(seconds=5), b"a")
    b.add(Decimal(2), T0, b"b")

    b.merge(a)

    assert b.result() == Decimal(1)


def test_min_and_max_spell_equal_values_the_same_whichever_came_first() -> None:
    one, one_again = Event(Decimal("1.0"), 0, b"a"), Event(Decimal("1.00"), 0, b"b")

    for aggregation in (Aggregation.MIN, Aggregation.MAX):
        assert str(fold(aggregation, [one, one_again]).result()) == "1.000000000"
        assert str(fold(aggregation, [one_again, one]).result()) == "1.000000000"


def test_unique_count_is_exact_and_counts_text() -> None:
    events = [Event(f"user-{i % 1000}", 0, i.to_bytes(16, "big")) for i in range(5000)]

    assert fold(Aggregation.UNIQUE_COUNT, events).result() == 1000


@pytest.mark.parametrize(
    ("aggregation", "empty"),
    [(Aggregation.SUM, "0"), (Aggregation.COUNT, "0"), (Aggregation.UNIQUE_COUNT, "0")],
)
def test_totals_of_nothing_are_zero(aggregation: Aggregation, empty: str) -> None:
    assert ACCUMULATORS[aggregation]().result() == Decimal(empty)


@pytest.mark.parametrize(
    "aggregation", [Aggregation.MIN, Aggregation.MAX, Aggregation.AVG, Aggregation.LATEST]
)
def test_extremes_of_nothing_are_undefined(aggregation: Aggregation) -> None:
    acc = ACCUMULATORS[aggregation]()
    acc.merge(ACCUMULATORS[aggregation]())

    with pytest.raises(ValueError, match="no events"):
        acc.result()


# -- the from-scratch oracle -------------------------------------------------------------


def test_recompute_refuses_no_events_and_mixed_meters() -> None:
    c = Contribution("m", (), Decimal(1), T0, b"a", Aggregation.SUM)

    with pytest.raises(ValueError, match="without events"):
        recompute([])
    with pytest.raises(ValueError, match="mixes"):
        recompute([c, c._replace(aggregation=Aggregation.MAX)])
    with pytest.raises(TypeError, match="Decimal"):
        recompute([c._replace(value="u1")])
