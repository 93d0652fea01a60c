"""Aggregates computed from scratch over a window's whole list of events.

A second, deliberately naive implementation of every aggregation: reconciliation
jobs and the tests hold the incremental accumulators to it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal, localcontext
from fractions import Fraction

from streams.domain.accumulators import EXACT, quantity
from streams.domain.metering import Contribution
from streams.domain.meters import Aggregation
from streams.domain.usage import VALUE_SCALE


def _numbers(events: Sequence[Contribution]) -> list[Decimal]:
    numbers = [c.value for c in events if isinstance(c.value, Decimal)]
    if len(numbers) != len(events):
        raise TypeError(f"{events[0].aggregation} needs Decimal values")
    return numbers


def _sum(events: Sequence[Contribution]) -> Decimal:
    with localcontext(EXACT):  # the default 28 digits would round a large total
        return sum(_numbers(events), Decimal(0))


def _avg(events: Sequence[Contribution]) -> Decimal:
    mean = sum((Fraction(v) for v in _numbers(events)), Fraction(0)) / len(events)
    return Decimal(round(mean * 10**VALUE_SCALE)).scaleb(-VALUE_SCALE, EXACT)


def _latest(events: Sequence[Contribution]) -> Decimal:
    return _numbers([max(events, key=lambda c: (c.time, c.digest))])[0]


_FROM_SCRATCH: dict[Aggregation, Callable[[Sequence[Contribution]], Decimal]] = {
    Aggregation.SUM: _sum,
    Aggregation.COUNT: lambda events: Decimal(len(events)),
    Aggregation.MIN: lambda events: min(_numbers(events)),
    Aggregation.MAX: lambda events: max(_numbers(events)),
    Aggregation.AVG: _avg,
    Aggregation.UNIQUE_COUNT: lambda events: Decimal(len({str(c.value) for c in events})),
    Aggregation.LATEST: _latest,
}


def recompute(events: Sequence[Contribution]) -> Decimal:
    """The aggregate of one window's distinct events (all of one meter), in 9 places.

    ValueError for no events, or for events that disagree on the aggregation.
    """
    if not events:
        raise ValueError("a window without events has no value")
    aggregations = {c.aggregation for c in events}
    if len(aggregations) != 1:
        raise ValueError(f"one window mixes aggregations {sorted(aggregations)}")
    return quantity(_FROM_SCRATCH[aggregations.pop()](events))
