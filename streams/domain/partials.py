"""Mergeable partial aggregates: what a window (or one late event) tells the rating stage.

A period's quantity is the aggregation over *all* of the period's events, whatever
the window size. A window's final value alone cannot give that for AVG (the mean
of window means is not the mean of the events), UNIQUE_COUNT (users seen in two
hours are not two users) or LATEST (ties across windows). So every window carries
the state that merges exactly:

=============  ====================================  ==========================
aggregation    partial state                          period quantity
=============  ====================================  ==========================
SUM            sum                                    sum of sums
COUNT          event count                            sum of counts
MIN / MAX      least / greatest value                 least / greatest of them
AVG            sum and event count                    sum of sums / sum of counts
UNIQUE_COUNT   the distinct values themselves         size of their union
LATEST         (time, digest, value) of the latest    the value of the latest one
=============  ====================================  ==========================

Merging is associative and commutative, and merging a partial with itself changes
only SUM, COUNT and AVG: callers keep one partial per window (its newest revision)
and one per late event (by digest), never the same events twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from fractions import Fraction

from streams.domain.accumulators import (
    EXACT,
    Accumulator,
    AvgOf,
    LatestOf,
    MaxOf,
    MinOf,
    SumOf,
    UniqueCountOf,
    quantity,
)
from streams.domain.meters import Aggregation
from streams.domain.usage import VALUE_SCALE

_ZERO = Decimal(0)
_UNITS = 10**VALUE_SCALE


@dataclass(frozen=True, slots=True)
class Latest:
    """The latest event so far: ordered by time, then digest (so ties never depend on arrival)."""

    time: datetime
    digest: bytes
    value: Decimal


@dataclass(frozen=True, slots=True)
class Partial:
    """The mergeable state of one aggregation over a set of events."""

    aggregation: Aggregation
    count: int = 0
    total: Decimal = _ZERO
    least: Decimal | None = None
    greatest: Decimal | None = None
    distinct: frozenset[str] = frozenset()
    latest: Latest | None = None

    @classmethod
    def of_event(
        cls, aggregation: Aggregation, value: Decimal | str, time: datetime, digest: bytes
    ) -> Partial:
        """One event's contribution (``value`` is the counted text for UNIQUE_COUNT)."""
        if aggregation is Aggregation.UNIQUE_COUNT:
            return cls(aggregation, count=1, distinct=frozenset((str(value),)))
        if not isinstance(value, Decimal):
            value = Decimal(value)
        return cls(
            aggregation,
            count=1,
            total=value,
            least=value,
            greatest=value,
            latest=Latest(time, digest, value),
        )

    def merge(self, other: Partial) -> Partial:
        """Both together; ValueError when they aggregate differently."""
        if other.aggregation is not self.aggregation:
            raise ValueError(f"cannot merge {other.aggregation} into {self.aggregation}")
        return Partial(
            self.aggregation,
            count=self.count + other.count,
            total=EXACT.add(self.total, other.total),
            least=_least(self.least, other.least),
            greatest=_greatest(self.greatest, other.greatest),
            distinct=self.distinct | other.distinct if other.distinct else self.distinct,
            latest=_later(self.latest, other.latest),
        )

    def quantity(self) -> Decimal:
        """The quantity billed for these events, with exactly 9 fractional digits.

        0 when there were none. AVG rounds once, half-even, from the exact fraction.
        """
        match self.aggregation:
            case Aggregation.SUM:
                return quantity(self.total)
            case Aggregation.COUNT:
                return quantity(Decimal(self.count))
            case Aggregation.MIN:
                return quantity(self.least if self.least is not None else _ZERO)
            case Aggregation.MAX:
                return quantity(self.greatest if self.greatest is not None else _ZERO)
            case Aggregation.AVG:
                if not self.count:
                    return quantity(_ZERO)
                units = round(Fraction(self.total) * _UNITS / self.count)
                return Decimal(units).scaleb(-VALUE_SCALE, EXACT)
            case Aggregation.UNIQUE_COUNT:
                return quantity(Decimal(len(self.distinct)))
            case Aggregation.LATEST:
                return quantity(self.latest.value if self.latest is not None else _ZERO)
        raise ValueError(f"no quantity for aggregation {self.aggregation!r}")

    @classmethod
    def of_value(cls, aggregation: Aggregation, value: Decimal, at: datetime) -> Partial:
        """A window known only by its final value (a version-1 window update, or a test).

        Exact for SUM, COUNT, MIN, MAX and LATEST; an AVG value counts as one event (the
        mean of such windows is the mean of their means). UNIQUE_COUNT has no partial
        without the values: ValueError.
        """
        match aggregation:
            case Aggregation.UNIQUE_COUNT:
                raise ValueError("a UNIQUE_COUNT window needs its distinct values, not a count")
            case Aggregation.COUNT:
                return cls(aggregation, count=int(value))
            case _:
                return cls.of_event(aggregation, value, at, b"")

    @classmethod
    def of_window(
        cls,
        aggregation: Aggregation,
        value: Decimal,
        events: int,
        total: Decimal | None,
        distinct: Iterable[str],
        latest: Latest | None,
    ) -> Partial:
        """A window update as the window stage publishes it: its value, its distinct event
        count (the revision) and the state only some aggregations need."""
        match aggregation:
            case Aggregation.SUM:
                return cls(aggregation, count=events, total=value)
            case Aggregation.COUNT:
                return cls(aggregation, count=events)
            case Aggregation.MIN:
                return cls(aggregation, count=events, least=value)
            case Aggregation.MAX:
                return cls(aggregation, count=events, greatest=value)
            case Aggregation.AVG:
                exact = total if total is not None else EXACT.multiply(value, Decimal(events))
                return cls(aggregation, count=events, total=exact)
            case Aggregation.UNIQUE_COUNT:
                return cls(aggregation, count=events, distinct=frozenset(distinct))
            case Aggregation.LATEST:
                return cls(aggregation, count=events, latest=latest)
        raise ValueError(f"no partial for aggregation {aggregation!r}")


def partial_of(aggregation: Aggregation, accumulator: Accumulator, events: int) -> Partial:
    """The partial state of a window's running accumulator over ``events`` distinct events."""
    match accumulator:
        case SumOf():
            return Partial(aggregation, count=events, total=accumulator.total)
        case AvgOf():
            return Partial(aggregation, count=accumulator.count, total=accumulator.total)
        case MinOf():
            return Partial(aggregation, count=events, least=accumulator.least)
        case MaxOf():
            return Partial(aggregation, count=events, greatest=accumulator.greatest)
        case UniqueCountOf():
            return Partial(aggregation, count=events, distinct=frozenset(accumulator.seen))
        case LatestOf() if accumulator.time is not None:
            latest = Latest(accumulator.time, accumulator.digest, accumulator.value)
            return Partial(aggregation, count=events, latest=latest)
    return Partial(aggregation, count=events)


def merge_all(aggregation: Aggregation, partials: Iterable[Partial]) -> Partial:
    """Every partial merged into one (an empty one when there are none).

    Distinct values are gathered in one set, not one frozenset per merge: a month of
    hourly seat windows merges in linear time.
    """
    count, total = 0, _ZERO
    least: Decimal | None = None
    greatest: Decimal | None = None
    distinct: set[str] = set()
    latest: Latest | None = None
    for p in partials:
        if p.aggregation is not aggregation:
            raise ValueError(f"cannot merge {p.aggregation} into {aggregation}")
        count += p.count
        total = EXACT.add(total, p.total)
        least, greatest = _least(least, p.least), _greatest(greatest, p.greatest)
        distinct |= p.distinct
        latest = _later(latest, p.latest)
    return Partial(aggregation, count, total, least, greatest, frozenset(distinct), latest)


def _least(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    return b if a is None else a if b is None or a <= b else b


def _greatest(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    return b if a is None else a if b is None or a >= b else b


def _later(a: Latest | None, b: Latest | None) -> Latest | None:
    if a is None:
        return b
    if b is None:
        return a
    return b if (b.time, b.digest) > (a.time, a.digest) else a
