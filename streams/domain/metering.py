"""Metering: what one accepted usage event adds to each meter that reads it.

A pure function of the event and the meters, so replaying the input topic after a
crash computes the very same contributions. This runs once per event and per
meter: it builds one small tuple per contribution and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Context, Decimal
from typing import NamedTuple

from streams.domain.dedup import event_digest
from streams.domain.meters import Aggregation, Meter
from streams.domain.usage import VALUE_PRECISION, UsageEvent

_ONE = Decimal(1)
_EXACT = Context(prec=2 * VALUE_PRECISION)  # normalize() must never round a Decimal(38, 9)
_COUNT = Aggregation.COUNT
_UNIQUE_COUNT = Aggregation.UNIQUE_COUNT


class Contribution(NamedTuple):
    """What one event adds to one meter, before it is placed in a time window.

    ``group`` holds the meter's ``group_by`` values in that order ("" when the event
    lacks one). ``value`` is the quantity, or for UNIQUE_COUNT the text of the counted
    property. ``aggregation`` travels with the contribution so the window stage, and a
    rebuild from its input topic, folds it the same way without reading the catalog.
    """

    meter: str
    group: tuple[str, ...]
    value: Decimal | str
    time: datetime
    digest: bytes
    aggregation: Aggregation


def canonical_text(value: Decimal) -> str:
    """A quantity as text, one spelling per number: ``1.50`` and ``1.5`` are one user."""
    if not value:
        return "0"  # also for -0
    return format(value.normalize(_EXACT), "f")


def property_text(event: UsageEvent, name: str) -> str | None:
    """A property's value as text: a dimension as sent, a quantity canonically."""
    text = event.dimensions.get(name)
    if text is not None:
        return text
    value = event.values.get(name)
    return None if value is None else canonical_text(value)


def accepts(event: UsageEvent, filters: Mapping[str, tuple[str, ...]]) -> bool:
    """True when every filtered property is present with one of its allowed values."""
    for name, allowed in filters.items():
        if property_text(event, name) not in allowed:
            return False
    return True


def contributions(
    event: UsageEvent, meters: Sequence[Meter], digest: bytes | None = None
) -> list[Contribution]:
    """One contribution per meter that reads this event.

    A meter reads the event when the type matches, its filters accept the event and
    the property it measures is present (ingest already dead-letters events missing
    a numeric property, so a miss here means the meter was added later). Pass
    ``meters`` as ``MeterIndex.by_type[event.type]`` to skip the type scan, and the
    ``digest`` when ingest already computed it.
    """
    found: list[Contribution] = []
    for meter in meters:
        if meter.event_type != event.type:
            continue
        if meter.filters and not accepts(event, meter.filters):
            continue
        aggregation = meter.aggregation
        value: Decimal | str | None
        if aggregation is _COUNT:
            value = _ONE
        elif meter.value_property is None:
            continue
        elif aggregation is _UNIQUE_COUNT:
            value = property_text(event, meter.value_property)
        else:
            value = event.values.get(meter.value_property)
        if value is None:
            continue
        if meter.group_by:
            group = tuple(property_text(event, name) or "" for name in meter.group_by)
        else:
            group = ()
        if digest is None:
            digest = event_digest(event.source, event.id)
        found.append(Contribution(meter.key, group, value, event.time, digest, aggregation))
    return found
