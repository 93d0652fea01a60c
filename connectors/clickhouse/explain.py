"""What the store holds behind an invoice line: read back and recomputed from the events.

A line's quantity is recomputed here from the accepted, attributed events themselves
(``usage_attributed``), by the meter's definition in the catalog the invoice was rated
under, in SQL: not from the windows or partials the stream billed from, so a wrong fold
in the stream shows up as a difference instead of agreeing with itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from connectors.clickhouse.analyst import query, stored_catalog
from connectors.clickhouse.sql import literal
from streams.domain.catalog import Catalog
from streams.domain.invoice import TierSlice
from streams.domain.meters import Aggregation, Meter
from streams.domain.rating.explain import tier_arithmetic, unit_arithmetic
from streams.domain.rating.money import rating_context
from streams.settings import Settings

_SCALE = Decimal("0.000000001")
"""Decimal(38, 9): the scale quantities are stored and billed at."""


@dataclass(frozen=True)
class StoredLine:
    line_no: int
    kind: str
    description: str
    price_key: str | None
    meter: str | None
    dimensions: dict[str, str]
    quantity: Decimal | None
    unit_amount: Decimal | None
    amount: Decimal
    tiers: tuple[TierSlice, ...]


@dataclass(frozen=True)
class StoredInvoice:
    id: str
    number: str
    customer: str
    currency: str
    period_start: datetime
    period_end: datetime
    catalog_version: str
    total: Decimal
    lines: tuple[StoredLine, ...]
    corrected_by: tuple[str, ...]
    """Numbers of later invoices with a correction line for this one."""


@dataclass(frozen=True)
class Evidence:
    """The events behind one usage line, as the store holds them."""

    quantity: Decimal | None
    """The meter's aggregation over them; None when no event matches."""
    events: int
    first: datetime | None
    last: datetime | None
    offsets: tuple[tuple[int, int, int], ...]
    """(partition, first offset, last offset) of the events on ``usage.accepted``."""
    late: int
    """Of them, how many arrived after their window had closed (``late_usage``)."""


def _property(name: str) -> str:
    """A property's text as metering reads it: a dimension as sent, else the quantity."""
    p = literal(name)
    return f"if(mapContains(dimensions, {p}), dimensions[{p}], toString(values[{p}]))"


def _aggregate(meter: Meter) -> str:
    """The aggregation in SQL, as (value, count): AVG's mean is divided exactly in Python."""
    if meter.aggregation is Aggregation.COUNT:
        return "toString(count()), 1"
    assert meter.value_property is not None
    value = f"values[{literal(meter.value_property)}]"
    return {
        Aggregation.SUM: f"toString(sum({value})), 1",
        Aggregation.MIN: f"toString(min({value})), 1",
        Aggregation.MAX: f"toString(max({value})), 1",
        Aggregation.AVG: f"toString(sum({value})), count()",
        Aggregation.UNIQUE_COUNT: f"toString(uniqExact({_property(meter.value_property)})), 1",
        Aggregation.LATEST: f"toString(argMax({value}, time)), 1",
    }[meter.aggregation]


def evidence_sql(
    meter: Meter, customer: str, dimensions: Mapping[str, str], start: datetime, end: datetime
) -> str:
    """The query behind :func:`usage_evidence` (pure, so it can be read and tested): the
    aggregation per group of the meter's ``group_by``, one row each, as the meter bills."""
    where = [
        f"customer = {literal(customer)}",
        f"type = {literal(meter.event_type)}",
        f"time >= toDateTime64({literal(start.isoformat())}, 6, 'UTC')",
        f"time < toDateTime64({literal(end.isoformat())}, 6, 'UTC')",
    ]
    if meter.value_property is not None and meter.aggregation is not Aggregation.COUNT:
        p = literal(meter.value_property)
        if meter.aggregation is Aggregation.UNIQUE_COUNT:
            where.append(f"(mapContains(dimensions, {p}) OR mapContains(values, {p}))")
        else:
            where.append(f"mapContains(values, {p})")
    for name, allowed in sorted(meter.filters.items()):
        where.append(f"{_property(name)} IN ({', '.join(map(literal, allowed))})")
    for name, value in sorted(dimensions.items()):
        where.append(f"{_property(name)} = {literal(value)}")
    groups = [_property(name) for name in meter.group_by] or ["''"]
    return (
        f"SELECT {_aggregate(meter)}, count(), toString(min(time)), toString(max(time)),"
        " groupArray(id), groupArray(source)"
        f" FROM usage_attributed WHERE {' AND '.join(where)} GROUP BY {', '.join(groups)}"
    )


def _instant(text: str) -> datetime | None:
    return datetime.fromisoformat(f"{text}+00:00") if text and not text.startswith("1970") else None


def usage_evidence(
    settings: Settings,
    meter: Meter,
    customer: str,
    dimensions: Mapping[str, str],
    start: datetime,
    end: datetime,
) -> Evidence:
    """The line's quantity from its events: per group of the meter, then added up over
    the groups the line covers (the rule docs/rating.md states for grouped meters)."""
    rows = query(settings, evidence_sql(meter, customer, dimensions, start, end)).rows
    quantity: Decimal | None = None
    events, firsts, lasts, keys = 0, [], [], []
    with rating_context():
        for value, count, n, first, last, ids, sources in rows:
            each = Decimal(value) / int(count)
            quantity = each if quantity is None else quantity + each
            events += int(n)
            firsts.append(first)
            lasts.append(last)
            keys += list(zip(sources, ids, strict=True))
    late = query(
        settings,
        "SELECT count() FROM late_usage WHERE"
        f" customer = {literal(customer)} AND meter = {literal(meter.key)}"
        f" AND event_time >= toDateTime64({literal(start.isoformat())}, 6, 'UTC')"
        f" AND event_time < toDateTime64({literal(end.isoformat())}, 6, 'UTC')",
    ).rows[0][0]
    return Evidence(
        None if quantity is None else quantity.quantize(_SCALE),
        events,
        _instant(min(firsts)) if firsts else None,
        _instant(max(lasts)) if lasts else None,
        _offsets(settings, keys) if keys else (),
        int(late),
    )


def _offsets(
    settings: Settings, keys: Sequence[tuple[str, str]]
) -> tuple[tuple[int, int, int], ...]:
    pairs = ", ".join(f"({literal(s)}, {literal(i)})" for s, i in keys[:10_000])
    rows = query(
        settings,
        "SELECT kafka_partition, min(kafka_offset), max(kafka_offset) FROM usage_events_raw"
        f" WHERE (source, id) IN ({pairs}) GROUP BY kafka_partition ORDER BY kafka_partition",
    ).rows
    return tuple((int(p), int(a), int(b)) for p, a, b in rows)


def stored_invoice(settings: Settings, key: str) -> StoredInvoice | None:
    """The invoice whose number or id is ``key``, with its lines, as the sink landed it."""
    head = query(
        settings,
        "SELECT id, number, customer, currency, toString(period_start), toString(period_end),"
        " catalog_version, toString(total) FROM invoices"
        f" WHERE number = {literal(key)} OR id = {literal(key)} LIMIT 1",
    ).rows
    if not head:
        return None
    invoice_id, number, customer, currency, start, end, version, total = head[0]
    rows = query(
        settings,
        "SELECT line_no, kind, description, price_key, meter, dimensions, toString(quantity),"
        f" toString(unit_amount), toString(amount), tiers FROM invoice_lines WHERE invoice_id = {literal(invoice_id)}"
        " ORDER BY line_no",
    ).rows
    corrections = query(
        settings,
        "SELECT DISTINCT i.number FROM invoice_lines AS l INNER JOIN invoices AS i"
        " ON l.invoice_id = i.id WHERE l.kind = 'adjustment'"
        f" AND position(l.description, {literal(number)}) > 0 ORDER BY i.number",
    ).rows
    start_at, end_at = _instant(start), _instant(end)
    assert start_at is not None and end_at is not None
    return StoredInvoice(
        invoice_id,
        number,
        customer,
        currency,
        start_at,
        end_at,
        version,
        Decimal(total),
        tuple(_line(r) for r in rows),
        tuple(str(r[0]) for r in corrections),
    )


def _line(row: Sequence[Any]) -> StoredLine:
    line_no, kind, description, price_key, meter, dims, quantity, unit, amount, tiers = row
    return StoredLine(
        int(line_no),
        str(kind),
        str(description),
        price_key,
        meter,
        dict(dims),
        _decimal(quantity),
        _decimal(unit),
        Decimal(amount),
        tuple(
            TierSlice(
                None if t["up_to"] is None else Decimal(t["up_to"]),
                Decimal(t["quantity"]),
                Decimal(t["unit_amount"]),
                Decimal(t["flat_amount"]),
                Decimal(t["amount"]),
            )
            for t in json.loads(tiers or "[]")
        ),
    )


def _decimal(text: str | None) -> Decimal | None:
    return None if text in (None, "", "\\N", "NULL") else Decimal(str(text))


def invoice_numbers(settings: Settings) -> list[str]:
    return [str(r[0]) for r in query(settings, "SELECT number FROM invoices ORDER BY number").rows]


@dataclass(frozen=True)
class Explained:
    line: StoredLine
    evidence: Evidence | None
    verdict: str
    """``ok``, ``corrected later`` (a later invoice carries its correction), ``not usage``
    (a fee or credit line) or ``MISMATCH``."""
    arithmetic: tuple[str, ...]


_INCLUDED = re.compile(r", (\d+(?:\.\d+)?) included$")


def _included(description: str) -> Decimal:
    """The free units a usage line states it took off (``…, 15780 included``)."""
    found = _INCLUDED.search(description)
    return Decimal(found.group(1)) if found else Decimal(0)


def explain_lines(settings: Settings, invoice: StoredInvoice, catalog: Catalog) -> list[Explained]:
    meters = {m.key: m for m in catalog.meters}
    out: list[Explained] = []
    for line in invoice.lines:
        if line.tiers or line.quantity is None or line.unit_amount is None:
            maths = tier_arithmetic(line.tiers, line.amount, invoice.currency)
        else:
            maths = unit_arithmetic(line.quantity, line.unit_amount, line.amount, invoice.currency)
        meter = meters.get(line.meter) if line.meter else None
        if meter is None or line.quantity is None:
            out.append(Explained(line, None, "not usage", maths.steps))
            continue
        evidence = usage_evidence(
            settings,
            meter,
            invoice.customer,
            line.dimensions,
            invoice.period_start,
            invoice.period_end,
        )
        included = _included(line.description)
        expected = max((evidence.quantity or Decimal(0)) - included, Decimal(0))
        agrees = expected == line.quantity and (maths.holds or not maths.steps)
        verdict = "ok" if agrees else "corrected later" if invoice.corrected_by else "MISMATCH"
        out.append(Explained(line, evidence, verdict, maths.steps))
    return out


def explain(settings: Settings, key: str) -> tuple[StoredInvoice, Catalog, list[Explained]] | None:
    invoice = stored_invoice(settings, key)
    if invoice is None:
        return None
    catalog = stored_catalog(settings, invoice.catalog_version)
    if catalog is None:
        return None
    return invoice, catalog, explain_lines(settings, invoice, catalog)
