"""From CloudEvents JSON lines to attributed meter readings, the plain way.

The rules written out here (and nowhere imported from production):

* A line is one JSON object; blank lines are skipped. A line is **rejected** when it
  is not a JSON object, lacks one of ``id``, ``source``, ``type``, ``subject``,
  ``time`` (or has it empty or not a string), has a time without a UTC offset,
  has ``data`` that is not an object, has a data property that is neither a
  string nor a number (``null``, ``true``, a list ...), a negative number, a
  number with more than 9 decimal places or 29 integer digits, an event type no
  meter reads, or lacks as a number a property that a SUM, MIN, MAX, AVG or
  LATEST meter of its type reads; also a line over 64 KiB or with more than 64
  data properties, and (when a clock range is given) an event time outside it.
* **De-duplication**: the first accepted line with a given ``(source, id)`` wins;
  later ones are duplicates whatever their content. A rejected line claims
  nothing.
* **Attribution**: the customer whose subject assignment covers the event's time,
  ``effective_from <= time < effective_to``; none means the event is parked.
* **Metering**: every meter of the event's type whose filters all accept the
  event (the property's text is one of the allowed values) and whose property is
  present reads it: COUNT reads 1, UNIQUE_COUNT the property's text, the others
  its number. A property's text is a string as sent, or a number written
  canonically (``1.50`` and ``1.5`` are both ``1.5``). The group is the text of
  each ``group_by`` property, ``""`` when absent.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from hashlib import blake2b
from typing import Any

from streams.domain.catalog import Catalog

NUMERIC = {"SUM", "MIN", "MAX", "AVG", "LATEST"}
"""Aggregations that read a number (COUNT reads nothing, UNIQUE_COUNT reads text)."""
MAX_LINE_BYTES = 65_536
MAX_PROPERTIES = 64


@dataclass(frozen=True)
class Reading:
    """What one accepted, attributed event gives one meter."""

    customer: str
    subject: str
    meter: str
    group: tuple[str, ...]
    value: Fraction | str
    time: datetime
    tiebreak: bytes
    """Orders events stamped with the same instant (for LATEST): the event's digest."""


@dataclass
class Screened:
    readings: list[Reading] = field(default_factory=list)
    rejected: int = 0
    duplicates: int = 0
    unattributed: int = 0
    accepted: int = 0


def digest(source: str, event_id: str) -> bytes:
    """The event digest LATEST breaks ties with: BLAKE2b-128 of ``len(source):source id``."""
    return blake2b(f"{len(source)}:{source}{event_id}".encode(), digest_size=16).digest()


def screen(
    catalog: Catalog,
    lines: Iterable[str | bytes],
    clock: tuple[datetime, datetime] | None = None,
) -> Screened:
    """Every line judged; ``clock``, when given, is the range of event times ingest
    accepts (``[now - max_age, now + max_skew]``): others are rejected."""
    out = Screened()
    seen: set[tuple[str, str]] = set()
    for raw in lines:
        text = raw.decode() if isinstance(raw, bytes) else raw
        if not text.strip():
            continue
        event = _parse(text, catalog)
        if event is None or (clock and not clock[0] <= event["time"] <= clock[1]):
            out.rejected += 1
            continue
        key = (event["source"], event["id"])
        if key in seen:
            out.duplicates += 1
            continue
        seen.add(key)
        out.accepted += 1
        customer = owner(catalog, event["subject"], event["time"])
        if customer is None:
            out.unattributed += 1
            continue
        out.readings += _readings(catalog, customer, event)
    return out


def owner(catalog: Catalog, subject: str, at: datetime) -> str | None:
    for a in catalog.assignments:
        if a.subject != subject or at < a.effective_from:
            continue
        if a.effective_to is None or at < a.effective_to:
            return a.customer
    return None


def _parse(text: str, catalog: Catalog) -> dict[str, Any] | None:
    if len(text.encode()) > MAX_LINE_BYTES:
        return None
    try:
        obj = json.loads(text, parse_float=Decimal, parse_int=Decimal)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    for name in ("id", "source", "type", "subject", "time"):
        if not isinstance(obj.get(name), str) or obj[name] == "":
            return None
    try:
        time = datetime.fromisoformat(obj["time"])
    except ValueError:
        return None
    if time.tzinfo is None:
        return None
    data = obj.get("data", {})
    if not isinstance(data, dict) or len(data) > MAX_PROPERTIES:
        return None
    texts: dict[str, str] = {}
    numbers: dict[str, Fraction] = {}
    for name, value in data.items():
        if isinstance(value, str):
            texts[name] = value
        elif isinstance(value, Decimal) and value.is_finite() and _fits(value):
            numbers[name] = Fraction(value)
            texts[name] = _canonical(value)
        else:
            return None
    meters = [m for m in catalog.meters if m.event_type == obj["type"]]
    if not meters:
        return None
    for m in meters:
        if m.aggregation.value in NUMERIC and m.value_property not in numbers:
            return None
    return {**obj, "time": time.astimezone(UTC), "texts": texts, "numbers": numbers}


def _fits(value: Decimal) -> bool:
    """Not negative, at most 9 decimal places and at most 29 integer digits."""
    if value < 0:
        return False
    frac = Fraction(value)
    return (frac * 10**9).denominator == 1 and frac < 10**29


def _canonical(value: Decimal) -> str:
    text = f"{value:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def _readings(catalog: Catalog, customer: str, event: dict[str, Any]) -> list[Reading]:
    texts: dict[str, str] = event["texts"]
    numbers: dict[str, Fraction] = event["numbers"]
    tiebreak = digest(event["source"], event["id"])
    found: list[Reading] = []
    for m in catalog.meters:
        if m.event_type != event["type"]:
            continue
        if any(texts.get(name) not in allowed for name, allowed in m.filters.items()):
            continue
        value: Fraction | str | None
        if m.aggregation.value == "COUNT":
            value = Fraction(1)
        elif m.aggregation.value == "UNIQUE_COUNT":
            value = texts.get(m.value_property or "")
        else:
            value = numbers.get(m.value_property or "")
        if value is None:
            continue
        group = tuple(texts.get(name, "") for name in m.group_by)
        found.append(
            Reading(customer, event["subject"], m.key, group, value, event["time"], tiebreak)
        )
    return found
