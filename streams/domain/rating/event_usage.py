"""The batch oracle's route to quantities: straight from the events, no windows.

The rate stage merges window partials (:mod:`streams.domain.partials`); this module
answers the same question from the list of a customer's de-duplicated events with
plain, separate code, so a bug in windowing or merging shows up as a difference
instead of being repeated here. The rules (``docs/rating.md``, "What a meter bills"):
the quantity of a group over ``[start, end)`` is the aggregation over the events
stamped in it: SUM adds, COUNT counts, MIN and MAX take the extremes, AVG is the sum
over the count rounded once half-even to 9 places, UNIQUE_COUNT counts distinct
values, LATEST takes the value of the event with the greatest (time, digest).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal
from fractions import Fraction

from streams.domain.meters import Aggregation, Meter

from .inputs import Group

_WIDE = Context(prec=120, rounding=ROUND_HALF_EVEN)
_NINE = Decimal("0.000000001")


@dataclass(frozen=True)
class MeteredEvent:
    """What one event gives one meter: its group, time, identity and value (text for
    UNIQUE_COUNT)."""

    meter: str
    group: Group
    time: datetime
    digest: bytes
    value: Decimal | str


class EventUsage:
    """One customer's metered events, measured on demand."""

    def __init__(self, events: Iterable[MeteredEvent]) -> None:
        self.events: dict[str, list[MeteredEvent]] = {}
        for e in events:
            self.events.setdefault(e.meter, []).append(e)

    def measure(self, meter: Meter, start: datetime, end: datetime) -> dict[Group, Decimal]:
        groups: dict[Group, list[MeteredEvent]] = {}
        for e in self.events.get(meter.key, ()):
            if start <= e.time < end:
                groups.setdefault(e.group, []).append(e)
        return {g: aggregate(meter.aggregation, es) for g, es in groups.items()}

    def first_time(self) -> datetime | None:
        return min((e.time for es in self.events.values() for e in es), default=None)


def aggregate(aggregation: Aggregation, events: list[MeteredEvent]) -> Decimal:
    """The aggregation over ``events`` (at least one), at the 9-place billing scale."""
    if aggregation is Aggregation.UNIQUE_COUNT:
        return _nine(Decimal(len({str(e.value) for e in events})))
    if aggregation is Aggregation.COUNT:
        return _nine(Decimal(len(events)))
    if aggregation is Aggregation.LATEST:
        last = max(events, key=lambda e: (e.time, e.digest))
        return _nine(Decimal(last.value))
    values = [Decimal(e.value) for e in events]
    if aggregation is Aggregation.MIN:
        return _nine(min(values))
    if aggregation is Aggregation.MAX:
        return _nine(max(values))
    total = Fraction(0)
    for v in values:
        total += Fraction(v)
    if aggregation is Aggregation.SUM:
        return _nine(Decimal(total.numerator) / Decimal(total.denominator))
    if aggregation is Aggregation.AVG:
        billionths = round(total * 10**9 / len(values))  # Python rounds half to even
        return Decimal(billionths) * _NINE
    raise ValueError(f"unknown aggregation {aggregation!r}")


def _nine(value: Decimal) -> Decimal:
    return value.quantize(_NINE, context=_WIDE)
