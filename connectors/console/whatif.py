"""What-if, for whoever prices: a candidate catalog against the one in force, on the
stored events of a past period, priced by ``simulate`` exactly as ``railyard simulate``
prices a JSON-lines file (same limits, same default ``as_of``: the period's close).

The stored events are the accepted, de-duplicated ones (``usage_events``), written back
as CloudEvents JSON lines; what ingest refused never reached them, so the oracle screens
nothing out that the stream kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from connectors.console.html import e, table
from connectors.console.svg import Series, bar_chart, number
from connectors.console.timefmt import instant
from streams.domain.catalog import Catalog
from streams.domain.cloudevents import to_json
from streams.domain.rating.screening import default_as_of
from streams.domain.rating.simulate import simulate
from streams.domain.usage import UsageEvent
from streams.domain.validation import Limits
from streams.settings import Settings

EVENTS_SQL = (
    "SELECT id, source, type, subject, toString(time), mapKeys(values),"
    " arrayMap(v -> toString(v), mapValues(values)), dimensions, dataschema"
    " FROM usage_events ORDER BY time, source, id"
)


def event_lines(rows: Sequence[Sequence[Any]]) -> list[str]:
    """Stored events as the CloudEvents JSON lines ``railyard simulate`` reads."""
    out = []
    for id_, source, type_, subject, time, keys, values, dimensions, dataschema in rows:
        at = instant(str(time))
        assert at is not None
        event = UsageEvent(
            str(id_),
            str(source),
            str(type_),
            str(subject),
            at,
            {str(k): Decimal(v) for k, v in zip(keys, values, strict=True)},
            {str(k): str(v) for k, v in dict(dimensions).items()},
            dataschema or None,
        )
        out.append(to_json(event))
    return out


@dataclass(frozen=True)
class Side:
    customer: str
    currency: str
    in_force: Decimal | None
    candidate: Decimal | None

    @property
    def difference(self) -> Decimal:
        return (self.candidate or Decimal(0)) - (self.in_force or Decimal(0))


def _totals(
    catalog: Catalog, lines: Sequence[str], period: str, s: Settings
) -> dict[tuple[str, str], Decimal]:
    limits = Limits(s.max_event_bytes, s.max_event_age, s.max_clock_skew)
    as_of = default_as_of(catalog, lines, period, s.period_grace, limits, s.max_message_bytes)
    result = simulate(
        catalog, lines, period, as_of, limits=limits, max_message_bytes=s.max_message_bytes
    )
    out: dict[tuple[str, str], Decimal] = {}
    for invoice in result.invoices:
        key = (invoice.customer, invoice.currency)
        out[key] = out.get(key, Decimal(0)) + invoice.total
    return out


def compare(
    in_force: Catalog, candidate: Catalog, lines: Sequence[str], period: str, s: Settings
) -> tuple[Side, ...]:
    """Per customer and currency, the period's invoice total under each catalog."""
    a = _totals(in_force, lines, period, s)
    b = _totals(candidate, lines, period, s)
    return tuple(Side(c, cur, a.get((c, cur)), b.get((c, cur))) for c, cur in sorted(a.keys() | b))


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
