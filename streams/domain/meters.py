"""Meters: which events are billable and which data property each one measures.

Ingest uses them to judge an event's data before it is accepted: an event type no
meter reads cannot be billed (``unknown_meter``), and the property a meter sums
must be a number (``non_numeric_value``). The full catalog (customers, plans,
rate cards) builds on this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Aggregation(StrEnum):
    SUM = "SUM"
    COUNT = "COUNT"
    MIN = "MIN"
    MAX = "MAX"
    AVG = "AVG"
    UNIQUE_COUNT = "UNIQUE_COUNT"
    LATEST = "LATEST"


NEEDS_NUMERIC_VALUE = frozenset(
    {Aggregation.SUM, Aggregation.MIN, Aggregation.MAX, Aggregation.AVG, Aggregation.LATEST}
)


@dataclass(frozen=True)
class Meter:
    key: str
    event_type: str
    aggregation: Aggregation
    value_property: str | None = None
    group_by: tuple[str, ...] = ()
    filters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    description: str = ""

    @property
    def numeric_property(self) -> str | None:
        """The data property that must be a number for this meter, if any."""
        return self.value_property if self.aggregation in NEEDS_NUMERIC_VALUE else None


@dataclass(frozen=True)
class MeterIndex:
    """Meters by event type, for the per-event checks on the hot path."""

    by_type: Mapping[str, tuple[Meter, ...]]
    numeric: Mapping[str, frozenset[str]]

    @classmethod
    def of(cls, meters: Iterable[Meter]) -> MeterIndex:
        by_type: dict[str, list[Meter]] = {}
        for m in meters:
            by_type.setdefault(m.event_type, []).append(m)
        numeric = {
            t: frozenset(p for m in ms if (p := m.numeric_property) is not None)
            for t, ms in by_type.items()
        }
        return cls({t: tuple(ms) for t, ms in by_type.items()}, numeric)

    def knows(self, event_type: str) -> bool:
        return event_type in self.by_type


def parse_meters(raw: list[Any], where: str = "meters") -> tuple[list[Meter], list[str]]:
    """Meters from their YAML form, and every problem found (with its location)."""
    meters: list[Meter] = []
    problems: list[str] = []
    seen: set[str] = set()
    for i, item in enumerate(raw or []):
        loc = f"{where}[{i}]"
        if not isinstance(item, dict):
            problems.append(f"{loc}: must be a mapping")
            continue
        key = item.get("key")
        if not isinstance(key, str) or not key:
            problems.append(f"{loc}.key: required")
            continue
        if key in seen:
            problems.append(f"{loc}.key: duplicate meter {key!r}")
        seen.add(key)
        try:
            agg = Aggregation(str(item.get("aggregation", "")).upper())
        except ValueError:
            problems.append(
                f"{loc}.aggregation: {item.get('aggregation')!r} is not one of "
                f"{', '.join(a.value for a in Aggregation)}"
            )
            continue
        event_type = item.get("event_type")
        if not isinstance(event_type, str) or not event_type:
            problems.append(f"{loc}.event_type: required")
            continue
        value_property = item.get("value_property")
        if agg is not Aggregation.COUNT and not value_property:
            problems.append(f"{loc}.value_property: required for {agg}")
            continue
        group_by = item.get("group_by") or []
        filters = item.get("filters") or {}
        if not isinstance(group_by, list) or not all(isinstance(g, str) for g in group_by):
            problems.append(f"{loc}.group_by: must be a list of property names")
            continue
        if not isinstance(filters, dict):
            problems.append(f"{loc}.filters: must map a property to allowed values")
            continue
        meters.append(
            Meter(
                key=key,
                event_type=event_type,
                aggregation=agg,
                value_property=value_property,
                group_by=tuple(group_by),
                filters={
                    k: tuple(v) if isinstance(v, list) else (str(v),) for k, v in filters.items()
                },
                description=str(item.get("description", "")),
            )
        )
    return meters, problems
