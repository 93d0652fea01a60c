"""The quantity one meter group bills for a stretch of time: its events, aggregated.

Exactly the aggregation over every de-duplicated, attributed event of the group
whose time falls in the stretch, whatever the window size:

* SUM: the sum of the values; COUNT: the number of events;
* MIN / MAX: the least / greatest value;
* AVG: sum over count, rounded half-even to 9 decimal places (the scale every
  stored quantity has);
* UNIQUE_COUNT: the number of distinct texts of the property over the stretch;
* LATEST: the value of the event with the latest time; events stamped with the
  same instant are ordered by their digest, the greatest wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

from .money import round_to
from .usage import Reading


def aggregate(aggregation: str, readings: Sequence[Reading]) -> Fraction:
    if not readings:
        raise ValueError("no events, no quantity")
    if aggregation == "COUNT":
        return Fraction(len(readings))
    if aggregation == "UNIQUE_COUNT":
        return Fraction(len({r.value for r in readings}))
    numbers = [_number(r) for r in readings]
    if aggregation == "SUM":
        return sum(numbers, Fraction(0))
    if aggregation == "MIN":
        return min(numbers)
    if aggregation == "MAX":
        return max(numbers)
    if aggregation == "AVG":
        return round_to(sum(numbers, Fraction(0)) / len(numbers), 9, "half_even")
    if aggregation == "LATEST":
        latest = readings[0]
        for r in readings[1:]:
            if (r.time, r.tiebreak) > (latest.time, latest.tiebreak):
                latest = r
        return _number(latest)
    raise ValueError(f"unknown aggregation {aggregation!r}")


def _number(reading: Reading) -> Fraction:
    if not isinstance(reading.value, Fraction):
        raise TypeError(f"{reading.meter} reads text where a number is needed")
    return reading.value
