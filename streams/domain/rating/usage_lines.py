"""Usage and recurring lines of one plan segment: steps (a) and (b) of invoice assembly.

Quantities come measured per meter group over the segment (:class:`UsageSource`), so
MAX bills each group's peak; the groups are then added up, across all groups for most
prices and per combination of the price's dimensions for a dimension price.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from streams.domain.catalog import DimensionPrice, FlatPrice, UsagePrice
from streams.domain.invoice import InvoiceLine, LineKind
from streams.domain.meters import Meter
from streams.domain.usage import VALUE_SCALE

from .inputs import Group, UsageSource
from .money import Rounding, rating_context, round_money
from .registry import price_usage
from .terms import PlanSegment

_ZERO = Decimal(0)
_QUANTUM = Decimal(1).scaleb(-VALUE_SCALE)


def by_dimensions(
    meter: Meter, per_group: Mapping[Group, Decimal], dimensions: tuple[str, ...]
) -> dict[Group, Decimal]:
    """Group quantities added up per combination of ``dimensions`` (``()``: one total)."""
    index = {name: i for i, name in enumerate(meter.group_by)}
    out: dict[Group, Decimal] = {}
    for group, each in per_group.items():
        key = tuple(_value(group, index.get(d)) for d in dimensions)
        with rating_context():
            out[key] = out.get(key, _ZERO) + each
    return out


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
    segment: PlanSegment, usage: UsageSource, meters: Mapping[str, Meter], money: Money
) -> list[InvoiceLine]:
    """One line per usage price with usage in the segment (per combination for dimensions).

    Prices come in key order, combinations in value order. A price whose meter had no
    usage in the segment (or that the catalog lacks) has no line. UnpricedUsage propagates.
    """
    lines: list[InvoiceLine] = []
    for price in segment.rate_card:
        meter = meters.get(price.meter) if not isinstance(price, FlatPrice) else None
        if isinstance(price, FlatPrice) or meter is None:
            continue
        measured = usage.measure(meter, segment.start, segment.end)
        if not measured:
            continue
        dimensions = price.dimensions if isinstance(price, DimensionPrice) else ()
        quantities = by_dimensions(meter, measured, dimensions)
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
        return segment.prorate(price.included).quantize(_QUANTUM, rounding=ROUND_DOWN)


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
        amount = segment.prorate(price.amount)  # exact: rounded once, on the line
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
