"""Usage and recurring lines of one plan segment: steps (a) and (b) of invoice assembly.

Quantities come from window totals: for each meter group the period quantity
is :func:`period_quantity` over that group's windows (so MAX bills each group's
peak), and the groups are then added up, across all groups for most prices and
per combination of the price's dimensions for a dimension price.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_DOWN, Decimal

from streams.domain.accumulators import quantity as nine_places
from streams.domain.catalog import DimensionPrice, FlatPrice, UsagePrice
from streams.domain.invoice import InvoiceLine, LineKind
from streams.domain.meters import Aggregation, Meter
from streams.domain.usage import VALUE_SCALE

from .money import Rounding, rating_context, round_money
from .quantities import period_quantity
from .registry import price_usage
from .terms import PlanSegment

_ZERO = Decimal(0)
_QUANTUM = Decimal(1).scaleb(-VALUE_SCALE)
LATE_FOLDED = frozenset({Aggregation.SUM, Aggregation.COUNT, Aggregation.MIN, Aggregation.MAX})
"""Aggregations a late quantity can join after its window closed (see docs/rating.md)."""

Group = tuple[str, ...]


@dataclass
class MeterUsage:
    """One meter's window values in one segment, per group: ``(window_start, value)``."""

    meter: Meter
    groups: dict[Group, list[tuple[datetime, Decimal]]] = field(default_factory=dict)

    def add(self, group: Group, at: datetime, value: Decimal) -> None:
        self.groups.setdefault(group, []).append((at, value))

    def quantities(self, dimensions: tuple[str, ...]) -> dict[Group, Decimal]:
        """Period quantity per combination of ``dimensions`` (``()``: one total)."""
        index = {name: i for i, name in enumerate(self.meter.group_by)}
        out: dict[Group, Decimal] = {}
        for group, pairs in self.groups.items():
            key = tuple(_value(group, index.get(d)) for d in dimensions)
            each = _at_scale(period_quantity(self.meter.aggregation, pairs))
            with rating_context():
                out[key] = out.get(key, _ZERO) + each
        return out


def _at_scale(value: Decimal) -> Decimal:
    """At most 9 fractional digits, like every stored quantity (an AVG can have 60)."""
    exponent = value.as_tuple().exponent
    return value if isinstance(exponent, int) and exponent >= -VALUE_SCALE else nine_places(value)


def _value(group: Group, i: int | None) -> str:
    return group[i] if i is not None and i < len(group) else ""


@dataclass(frozen=True)
class Money:
    """The invoice currency and how its lines are rounded."""

    currency: str
    rounding: Rounding

    def round(self, amount: Decimal) -> Decimal:
        return round_money(amount, self.currency, self.rounding)


def usage_lines(
    segment: PlanSegment, usage: Mapping[str, MeterUsage], money: Money
) -> list[InvoiceLine]:
    """One line per usage price with usage in the segment (per combination for dimensions).

    Prices come in key order, combinations in value order. A price whose meter saw
    no window in the segment has no line. UnpricedUsage propagates.
    """
    lines: list[InvoiceLine] = []
    for price in segment.rate_card:
        if isinstance(price, FlatPrice) or price.meter not in usage:
            continue
        dimensions = price.dimensions if isinstance(price, DimensionPrice) else ()
        quantities = usage[price.meter].quantities(dimensions)
        free = _included(price, segment)
        for values in sorted(quantities):
            metered = quantities[values]
            included = min(free, metered)
            free -= included
            lines.append(
                _usage_line(
                    segment,
                    price,
                    dict(zip(dimensions, values, strict=True)),
                    metered,
                    included,
                    money,
                )
            )
    return lines


def _included(price: UsagePrice, segment: PlanSegment) -> Decimal:
    """The price's free units for the segment: prorated, down to the quantity scale."""
    if not price.included or segment.whole:
        return price.included
    with rating_context():
        return (price.included * segment.fraction).quantize(_QUANTUM, rounding=ROUND_DOWN)


def _usage_line(
    segment: PlanSegment,
    price: UsagePrice,
    dimensions: dict[str, str],
    metered: Decimal,
    included: Decimal,
    money: Money,
) -> InvoiceLine:
    priced = price_usage(price, metered, dimensions, included)
    labels = ", ".join(f"{k}={v}" for k, v in dimensions.items())
    description = f"{price.key} ({labels})" if labels else price.key
    if included:
        description += f", {included} included"
    return InvoiceLine(
        kind=LineKind.USAGE,
        description=description + _stretch(segment),
        amount=money.round(priced.amount),
        price_key=price.key,
        meter=price.meter,
        dimensions=tuple(dimensions.items()),
        quantity=priced.quantity,
        unit_amount=priced.unit_amount,
        tiers=priced.tiers,
        service_start=segment.start,
        service_end=segment.end,
    )


def recurring_lines(segment: PlanSegment, money: Money) -> list[InvoiceLine]:
    """Each flat fee of the segment's rate card, prorated by the share of the period it covers."""
    lines: list[InvoiceLine] = []
    for price in segment.rate_card:
        if not isinstance(price, FlatPrice):
            continue
        with rating_context():
            amount = price.amount * segment.fraction
        lines.append(
            InvoiceLine(
                kind=LineKind.RECURRING,
                description=price.key + _stretch(segment),
                amount=money.round(amount),
                price_key=price.key,
                meter=price.meter,
                unit_amount=price.amount,
                service_start=segment.start,
                service_end=segment.end,
            )
        )
    return lines


def _stretch(segment: PlanSegment) -> str:
    if segment.whole:
        return ""
    return f" ({segment.plan.key}, {segment.start:%Y-%m-%d %H:%M} to {segment.end:%Y-%m-%d %H:%M}, prorated)"


def collect(
    segments: Iterable[PlanSegment],
    meters: Mapping[str, Meter],
    windows: Iterable[tuple[str, Group, datetime, Decimal]],
    late: Iterable[tuple[str, Group, datetime, Decimal]],
) -> list[dict[str, MeterUsage]]:
    """Window totals and late quantities sorted into segments, per meter.

    A window belongs to the segment holding its start; windows outside every
    segment and meters the catalog no longer has are left out. A window given
    twice is a bug upstream (its value would count twice), so it raises.
    """
    spans = list(segments)
    bins: list[dict[str, MeterUsage]] = [{} for _ in spans]
    seen: set[tuple[str, Group, datetime]] = set()

    def place(meter_key: str, group: Group, at: datetime, value: Decimal) -> None:
        meter = meters.get(meter_key)
        if meter is None:
            return
        for i, segment in enumerate(spans):
            if segment.covers(at):
                bins[i].setdefault(meter_key, MeterUsage(meter)).add(group, at, value)
                return

    for meter_key, group, start, value in windows:
        key = (meter_key, tuple(group), start)
        if key in seen:
            raise ValueError(f"window {meter_key} {group} {start.isoformat()} given twice")
        seen.add(key)
        place(meter_key, tuple(group), start, value)
    for meter_key, group, at, value in late:
        meter = meters.get(meter_key)
        if meter is not None and meter.aggregation in LATE_FOLDED:
            place(meter_key, tuple(group), at, value)
    return bins
