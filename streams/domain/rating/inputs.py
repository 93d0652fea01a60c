"""What invoice assembly rates: a customer's usage, measured per meter, group and span.

Rating asks one question of usage: *what quantity did each group of this meter reach
in ``[start, end)``?* (:class:`UsageSource`). The rate stage answers it from window
partials and late usage (:class:`WindowedUsage`); the batch oracle answers it from the
raw events by its own route (:mod:`.simulate`). Either way the answer is the exact
aggregation over the span's events (see :mod:`streams.domain.partials`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple, Protocol, runtime_checkable

from streams.domain.meters import Aggregation, Meter
from streams.domain.partials import Partial, merge_all

Group = tuple[str, ...]


class WindowTotal(NamedTuple):
    """A meter's state in one window for one group of a customer.

    ``group`` holds the values of the meter's ``group_by``, in that order; a
    window is identified by (meter, group, window_start) and given once. ``value``
    is the window's mergeable :class:`Partial`, or its final value alone where that
    merges exactly (every aggregation but AVG and UNIQUE_COUNT).
    """

    meter: str
    group: tuple[str, ...]
    window_start: datetime
    value: Decimal | Partial


class LateQuantity(NamedTuple):
    """Usage that missed its window: billed in the period its ``time`` falls in.

    ``quantity`` is the event's :class:`Partial`, or its contribution alone (a Decimal,
    or the counted text for UNIQUE_COUNT).
    """

    meter: str
    group: tuple[str, ...]
    time: datetime
    quantity: Decimal | str | Partial


@runtime_checkable
class UsageSource(Protocol):
    """A customer's usage, as rating reads it."""

    def measure(self, meter: Meter, start: datetime, end: datetime) -> dict[Group, Decimal]:
        """The quantity of each group of ``meter`` over its usage in ``[start, end)``.

        Groups with no usage in the span are absent: an empty answer means no line.
        """
        ...


class WindowedUsage:
    """Window partials (placed at their window's start) and late usage (at its time).

    Meters the catalog no longer has are left out. A window given twice is a bug
    upstream (its events would count twice), so it raises ValueError.
    """

    def __init__(
        self,
        windows: Iterable[WindowTotal],
        late: Iterable[LateQuantity],
        meters: Mapping[str, Meter],
    ) -> None:
        self._points: dict[str, list[tuple[datetime, Group, Partial]]] = {}
        seen: set[tuple[str, Group, datetime]] = set()
        for meter_key, group, start, value in windows:
            key = (meter_key, tuple(group), start)
            if key in seen:
                raise ValueError(f"window {meter_key} {group} {start.isoformat()} given twice")
            seen.add(key)
            self._place(meters.get(meter_key), tuple(group), start, value)
        for meter_key, group, at, quantity in late:
            self._place(meters.get(meter_key), tuple(group), at, quantity)

    def _place(
        self, meter: Meter | None, group: Group, at: datetime, value: Decimal | str | Partial
    ) -> None:
        if meter is None:
            return
        partial = as_partial(meter.aggregation, value, at)
        if partial is not None:
            self._points.setdefault(meter.key, []).append((at, group, partial))

    def measure(self, meter: Meter, start: datetime, end: datetime) -> dict[Group, Decimal]:
        groups: dict[Group, list[Partial]] = {}
        for at, group, partial in self._points.get(meter.key, ()):
            if start <= at < end:
                groups.setdefault(group, []).append(partial)
        return {g: merge_all(meter.aggregation, ps).quantity() for g, ps in groups.items()}


def as_partial(
    aggregation: Aggregation, value: Decimal | str | Partial, at: datetime
) -> Partial | None:
    """``value`` as a partial of ``aggregation``; None when it cannot be one.

    A partial of another aggregation (the catalog changed the meter since) counts by
    its quantity; a bare value of a UNIQUE_COUNT meter is one counted value.
    """
    if isinstance(value, Partial):
        if value.aggregation is aggregation:
            return value
        value = value.quantity()
    if aggregation is Aggregation.UNIQUE_COUNT:
        if isinstance(value, Decimal) and not isinstance(value, str):
            return None  # a count says nothing about which values were counted
        return Partial.of_event(aggregation, value, at, b"")
    if isinstance(value, str):
        try:
            value = Decimal(value)
        except ArithmeticError:
            return None
    return Partial.of_value(aggregation, value, at)
