"""What-if, for whoever prices: a candidate catalog against the one in force, on the
stored events of a past period, priced by ``simulate`` exactly as ``railyard simulate``
prices a JSON-lines file (same limits, same default ``as_of``: the period's close).

The stored events are the accepted, de-duplicated ones (``usage_events``), taken as the
CloudEvents JSON lines they were (:func:`event_lines`); what ingest refused never reached
them, so the oracle screens nothing out that the stream kept. The lines are read once
(:func:`parsed_events`) and both catalogs are judged on what was read (which meters
exist, who owns a subject and the default ``as_of`` depend on the catalog; reading a
line does not).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from connectors.console.html import e, table
from connectors.console.svg import Series, bar_chart, number
from connectors.console.timefmt import instant
from streams.domain.catalog import Catalog
from streams.domain.cloudevents import to_json
from streams.domain.rating.screening import ParsedLine, default_as_of_parsed, parse_lines
from streams.domain.rating.simulate import simulate_parsed
from streams.domain.usage import UsageEvent
from streams.domain.validation import Limits
from streams.settings import Settings

EVENTS_SQL = (
    "SELECT toJSONString((id, source, type, subject, toString(time), mapKeys(values),"
    " arrayMap(v -> toString(v), mapValues(values)), dimensions, dataschema))"
    " FROM usage_events ORDER BY time, source, id"
)
"""Each stored event as one JSON array of its columns (:func:`stored_rows` reads them): one
string a row costs the sink's query port a third less than nine columns with maps in them."""

LAST_PERIOD_SQL = (
    "SELECT if(count() = 0, '', formatDateTime(max(period_start), '%Y-%m'))"
    " FROM invoices WHERE kind = 'invoice'"
)
"""The month of the newest invoiced period: the form proposes it, the one most re-priced."""
FINGERPRINT_SQL = "SELECT count(), toString(max(ingested_at)) FROM usage_events"
"""Cheap, and it moves whenever an event is stored (``ingested_at`` is the insert's time)."""

Fingerprint = tuple[Any, ...]


def stored_rows(rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """:data:`EVENTS_SQL`'s rows as the columns :func:`event_lines` takes."""
    return [json.loads(row[0]) for row in rows]


def event_lines(rows: Sequence[Sequence[Any]]) -> list[str]:
    """Stored events as the CloudEvents JSON lines ``railyard simulate`` reads."""
    return [to_json(_stored(row)) for row in rows]


def parsed_events(rows: Sequence[Sequence[Any]], max_message_bytes: int) -> tuple[ParsedLine, ...]:
    """The stored events' lines read once (:func:`parse_lines`), for both catalogs to judge."""
    return tuple(parse_lines(event_lines(rows), max_message_bytes))


def _stored(row: Sequence[Any]) -> UsageEvent:
    id_, source, type_, subject, time, keys, values, dimensions, dataschema = row
    at = instant(str(time))
    assert at is not None
    return UsageEvent(
        str(id_),
        str(source),
        str(type_),
        str(subject),
        at,
        {str(k): Decimal(v) for k, v in zip(keys, values, strict=True)},
        {str(k): str(v) for k, v in dict(dimensions).items()},
        dataschema or None,
    )


@dataclass(frozen=True)
class Side:
    customer: str
    currency: str
    in_force: Decimal | None
    candidate: Decimal | None

    @property
    def difference(self) -> Decimal:
        return (self.candidate or Decimal(0)) - (self.in_force or Decimal(0))


Totals = Mapping[tuple[str, str], Decimal]
"""(customer, currency) -> the period's invoice total."""


def totals(catalog: Catalog, lines: Sequence[ParsedLine], period: str, s: Settings) -> Totals:
    """What ``railyard simulate --period`` bills each customer and currency under ``catalog``
    (with the settings' limits and default ``as_of``), summed per invoice."""
    limits = Limits(s.max_event_bytes, s.max_event_age, s.max_clock_skew)
    as_of = default_as_of_parsed(catalog, lines, period, s.period_grace, limits)
    result = simulate_parsed(catalog, lines, period, as_of, limits=limits)
    out: dict[tuple[str, str], Decimal] = {}
    for invoice in result.invoices:
        key = (invoice.customer, invoice.currency)
        out[key] = out.get(key, Decimal(0)) + invoice.total
    return out


def compare(
    in_force: Catalog, candidate: Catalog, lines: Sequence[ParsedLine], period: str, s: Settings
) -> tuple[Side, ...]:
    """Per customer and currency, the period's invoice total under each catalog.

    ``lines``: :func:`parsed_events` (or :func:`parse_lines` of JSON lines), read once
    and judged per catalog."""
    return sides(totals(in_force, lines, period, s), totals(candidate, lines, period, s))


def sides(in_force: Totals, candidate: Totals) -> tuple[Side, ...]:
    keys = sorted(in_force.keys() | candidate.keys())
    return tuple(Side(c, cur, in_force.get((c, cur)), candidate.get((c, cur))) for c, cur in keys)


class Kept:
    """What the API process keeps between what-if requests, bounded: the stored events as
    read under the store's newest :data:`FINGERPRINT_SQL` (one copy), and the totals of
    the last ``size`` (catalog version, period, fingerprint). A fingerprint the store has
    moved past is never asked for again, so nothing kept goes stale; the page's numbers
    are the ones computing afresh gives. Thread-safe: requests run on worker threads
    (two that miss at once both compute, and either result is the same)."""

    def __init__(self, size: int = 32) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._events: tuple[Fingerprint, tuple[ParsedLine, ...]] | None = None
        self._totals: OrderedDict[tuple[str, str, Fingerprint], Totals] = OrderedDict()

    def events(
        self, fingerprint: Fingerprint, read: Callable[[], tuple[ParsedLine, ...]]
    ) -> tuple[ParsedLine, ...]:
        with self._lock:
            if self._events is not None and self._events[0] == fingerprint:
                return self._events[1]
        lines = read()
        with self._lock:
            self._events = (fingerprint, lines)
        return lines

    def totals(self, key: tuple[str, str, Fingerprint], compute: Callable[[], Totals]) -> Totals:
        """``key``: (catalog version, period, fingerprint)."""
        with self._lock:
            found = self._totals.get(key)
            if found is not None:
                self._totals.move_to_end(key)
                return found
        value = compute()
        with self._lock:
            self._totals[key] = value
            while len(self._totals) > self.size:
                self._totals.popitem(last=False)
        return value


def render_form(candidate: str, period: str, problems: Sequence[str] = ()) -> str:
    errors = "".join(f'<li class="bad">{e(p)}</li>' for p in problems)
    return (f"<ul>{errors}</ul>" if errors else "") + (
        '<form method="post" id="what-if-form">'
        '<p><label>Candidate catalog (YAML): <input type="file" id="upload" accept=".yaml,.yml">'
        "</label></p>"
        f'<textarea name="candidate" id="candidate" aria-label="candidate catalog">{e(candidate)}'
        "</textarea>"
        f'<p><label>Period <input name="period" placeholder="YYYY-MM" value="{e(period)}"'
        ' size="8"></label> <button>Compare</button></p></form>'
    )


def render_result(sides: Sequence[Side], period: str) -> str:
    def money(v: Decimal | None) -> str:
        return "" if v is None else e(number(v))

    rows = [
        [
            e(s.customer),
            e(s.currency),
            money(s.in_force),
            money(s.candidate),
            f'<span class="{"bad" if s.difference > 0 else "ok"}">{e(number(s.difference))}</span>',
        ]
        for s in sides
    ]
    charts = "".join(
        bar_chart(
            f"Invoice totals in {currency}, in force and candidate",
            [s.customer for s in group],
            [
                Series("in force", tuple(s.in_force or Decimal(0) for s in group)),
                Series("candidate", tuple(s.candidate or Decimal(0) for s in group)),
            ],
        )
        for currency in sorted({s.currency for s in sides})
        for group in [[s for s in sides if s.currency == currency]]
    )
    return (
        f"<h2>Invoices for periods starting {e(period)}</h2>"
        + table(
            ["customer", "currency", "in force", "candidate", "difference"],
            rows,
            (2, 3, 4),
            id_="what-if",
        )
        + f'<div class="charts">{charts}</div>'
    )
