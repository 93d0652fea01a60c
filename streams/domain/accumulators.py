"""Exact, mergeable running aggregates: one class per meter aggregation.

Every accumulator gives the same result for the same set of events in any arrival
order, and ``merge`` of two accumulators over disjoint event sets equals one
accumulator over their union. Neither ever counts an event twice by itself: the
window state keeps the event digests and adds each event once.

Results are quantities in the billing scale: ``Decimal`` with exactly
``VALUE_SCALE`` (9) fractional digits, so one number has one spelling downstream.
Inputs are accepted quantities (at most 9 fractional digits), which makes SUM, MIN,
MAX and LATEST exact; AVG is the one aggregate that rounds (see :class:`AvgOf`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal
from fractions import Fraction
from typing import Any, Protocol, Self

from streams.domain.meters import Aggregation
from streams.domain.usage import VALUE_PRECISION, VALUE_SCALE

EXACT = Context(prec=2 * VALUE_PRECISION, rounding=ROUND_HALF_EVEN)
"""Wide enough that sums of Decimal(38, 9) quantities never round (the default is 28)."""
_QUANTUM = Decimal(1).scaleb(-VALUE_SCALE)
_UNITS = 10**VALUE_SCALE
_ZERO = Decimal(0)


def quantity(value: Decimal) -> Decimal:
    """``value`` with exactly 9 fractional digits (rounding half-even beyond that)."""
    return value.quantize(_QUANTUM, context=EXACT)


class Accumulator(Protocol):
    """A running aggregate over one window's events."""

    def add(self, value: Any, time: datetime, digest: bytes) -> None:
        """Fold in one event: a Decimal quantity, or text for UNIQUE_COUNT."""

    def merge(self, other: Self) -> None:
        """Fold in an accumulator over a disjoint set of events."""

    def result(self) -> Decimal:
        """The aggregate so far; ValueError when MIN, MAX, AVG or LATEST saw nothing."""


def _empty(name: str) -> ValueError:
    return ValueError(f"{name} of no events is undefined")


class SumOf:
    __slots__ = ("total",)

    def __init__(self) -> None:
        self.total = _ZERO

    def add(self, value: Decimal, time: datetime, digest: bytes) -> None:
        self.total = EXACT.add(self.total, value)

    def merge(self, other: SumOf) -> None:
        self.total = EXACT.add(self.total, other.total)

    def result(self) -> Decimal:
        return quantity(self.total)


class CountOf:
    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def add(self, value: Decimal, time: datetime, digest: bytes) -> None:
        self.count += 1

    def merge(self, other: CountOf) -> None:
        self.count += other.count

    def result(self) -> Decimal:
        return quantity(Decimal(self.count))


class MinOf:
    __slots__ = ("least",)

    def __init__(self) -> None:
        self.least: Decimal | None = None

    def add(self, value: Decimal, time: datetime, digest: bytes) -> None:
        if self.least is None or value < self.least:
            self.least = value

    def merge(self, other: MinOf) -> None:
        theirs = other.least
        if theirs is not None and (self.least is None or theirs < self.least):
            self.least = theirs

    def result(self) -> Decimal:
        if self.least is None:
            raise _empty("MIN")
        return quantity(self.least)  # 1.0 and 1.00 tie; quantizing hides which came first


class MaxOf:
    __slots__ = ("greatest",)

    def __init__(self) -> None:
        self.greatest: Decimal | None = None

    def add(self, value: Decimal, time: datetime, digest: bytes) -> None:
        if self.greatest is None or value > self.greatest:
            self.greatest = value

    def merge(self, other: MaxOf) -> None:
        theirs = other.greatest
        if theirs is not None and (self.greatest is None or theirs > self.greatest):
            self.greatest = theirs

    def result(self) -> Decimal:
        if self.greatest is None:
            raise _empty("MAX")
        return quantity(self.greatest)


class AvgOf:
    """Keeps the exact sum and count; only the result rounds.

    The mean is rounded once, from the exact fraction ``sum / count``, to 9 decimal
    places with ROUND_HALF_EVEN (banker's rounding, the Decimal default): no double
    rounding through an intermediate precision, and no drift across many windows.
    """

    __slots__ = ("total", "count")

    def __init__(self) -> None:
        self.total = _ZERO
        self.count = 0

    def add(self, value: Decimal, time: datetime, digest: bytes) -> None:
        self.total = EXACT.add(self.total, value)
        self.count += 1

    def merge(self, other: AvgOf) -> None:
        self.total = EXACT.add(self.total, other.total)
        self.count += other.count

    def result(self) -> Decimal:
        if not self.count:
            raise _empty("AVG")
        units = round(Fraction(self.total) * _UNITS / self.count)  # int: half-even, exact
        return Decimal(units).scaleb(-VALUE_SCALE, EXACT)


class UniqueCountOf:
    """Exact distinct count: the set of values itself, never a sketch (it is billed)."""

    __slots__ = ("seen",)

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def add(self, value: str, time: datetime, digest: bytes) -> None:
        self.seen.add(value)

    def merge(self, other: UniqueCountOf) -> None:
        self.seen |= other.seen

    def result(self) -> Decimal:
        return quantity(Decimal(len(self.seen)))


class LatestOf:
    """The value of the event with the greatest ``(time, digest)``.

    The digest breaks ties between events stamped with the same instant, so the
    answer never depends on which of them arrived last.
    """

    __slots__ = ("time", "digest", "value")

    def __init__(self) -> None:
        self.time: datetime | None = None
        self.digest = b""
        self.value = _ZERO

    def add(self, value: Decimal, time: datetime, digest: bytes) -> None:
        latest = self.time
        if latest is None or time > latest or (time == latest and digest > self.digest):
            self.time, self.digest, self.value = time, digest, value

    def merge(self, other: LatestOf) -> None:
        if other.time is not None:
            self.add(other.value, other.time, other.digest)

    def result(self) -> Decimal:
        if self.time is None:
            raise _empty("LATEST")
        return quantity(self.value)


ACCUMULATORS: Mapping[Aggregation, Callable[[], Accumulator]] = {
    Aggregation.SUM: SumOf,
    Aggregation.COUNT: CountOf,
    Aggregation.MIN: MinOf,
    Aggregation.MAX: MaxOf,
    Aggregation.AVG: AvgOf,
    Aggregation.UNIQUE_COUNT: UniqueCountOf,
    Aggregation.LATEST: LatestOf,
}
"""The accumulator for each aggregation; a unit test holds it to every member."""
