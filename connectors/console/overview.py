"""Overview, for finance and operators: revenue per rail and currency, dead letters, ingest.

Revenue by the rules of ``revenue_status`` (docs/rails.md, "Collected and outstanding"),
read per month from the same per-invoice view, ``invoice_payments``: *issued* the totals,
*collected* paid less refunded, *outstanding* what is neither paid nor voided, *failed*
the unpaid part of invoices whose payment failed (a part of outstanding), *refunded*.
Currencies are never added together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from connectors.clickhouse.sql import literal
from connectors.console.html import e, table, when
from connectors.console.svg import Series, bar_chart, line_chart, number
from connectors.console.timefmt import instant

STATES = ("issued", "collected", "outstanding", "failed")


def months(today: date) -> tuple[str, str]:
    """The current and the last month, as ``YYYY-MM-01`` (invoices group by period start)."""
    first = today.replace(day=1)
    last = (
        first.replace(year=first.year - 1, month=12)
        if first.month == 1
        else first.replace(month=first.month - 1)
    )
    return first.isoformat(), last.isoformat()


def revenue_sql(month_starts: Sequence[str]) -> str:
    """``revenue_status``'s sums, per month of the billing period's start as well."""
    wanted = ", ".join(f"toDate({literal(m)})" for m in month_starts)
    return (
        "SELECT toString(toStartOfMonth(i.period_start)) AS month, p.rail, p.currency,"
        " count(), toString(sum(p.total)),"
        " toString(sum(p.paid_amount) - sum(p.refunded_amount)),"
        " toString(sumIf(p.total - p.paid_amount, p.payment_status != 'voided')),"
        " toString(sumIf(p.total - p.paid_amount, p.payment_status = 'payment_failed')),"
        " toString(sum(p.refunded_amount))"
        " FROM invoice_payments AS p INNER JOIN invoices AS i ON i.id = p.invoice_id"
        f" WHERE toStartOfMonth(i.period_start) IN ({wanted})"
        " GROUP BY month, p.rail, p.currency ORDER BY month, p.rail, p.currency"
    )


DEAD_LETTERS_SQL = (
    "SELECT stage, reason, records FROM dead_letters_by_reason ORDER BY records DESC, reason"
)

# The newest hour of ingest, by minute: anchored on the store's newest row, not a clock.
EVENTS_PER_MINUTE_SQL = (
    "SELECT toString(toStartOfMinute(ingested_at)) AS minute, count() FROM usage_events"
    " WHERE ingested_at > (SELECT max(ingested_at) FROM usage_events) - INTERVAL 1 HOUR"
    " GROUP BY minute ORDER BY minute"
)


# How far each stage has got, in event time (from the store: what analysts can see).
FRESHNESS_SQL = (
    "SELECT stage, newest FROM ("
    + " UNION ALL ".join(
        f"SELECT {n} AS n, {literal(stage)} AS stage, toString(max({column})) AS newest FROM {view}"
        for n, (stage, column, view) in enumerate(
            (
                ("ingest: newest accepted event", "time", "usage_events"),
                ("window: newest window end", "window_end", "usage_windows"),
                ("rate: newest running spend", "as_of", "billing_spend"),
                ("invoices: newest issued", "issued_at", "invoices"),
                ("rails: newest status", "updated_at", "invoice_delivery"),
            )
        )
    )
    + ") ORDER BY n"
)

PARKED_SQL = (
    "SELECT subject, type, events, toString(first_event_at), toString(parked_since)"
    " FROM unattributed_usage ORDER BY parked_since, subject, type LIMIT 50"
)


@dataclass(frozen=True)
class Revenue:
    month: str
    rail: str
    currency: str
    invoices: int
    issued: Decimal
    collected: Decimal
    outstanding: Decimal
    failed: Decimal
    refunded: Decimal

    def state(self, name: str) -> Decimal:
        return {
            "issued": self.issued,
            "collected": self.collected,
            "outstanding": self.outstanding,
            "failed": self.failed,
            "refunded": self.refunded,
        }[name]


@dataclass(frozen=True)
class Overview:
    months: tuple[str, str]
    revenue: tuple[Revenue, ...]
    dead_letters: tuple[tuple[str, str, int], ...]
    per_minute: tuple[tuple[str, int], ...]
    freshness: tuple[tuple[str, datetime | None], ...] = ()
    parked: tuple[tuple[str, str, int, datetime | None, datetime | None], ...] = ()


def overview(
    month_starts: tuple[str, str],
    revenue_rows: Sequence[Sequence[Any]],
    dead_rows: Sequence[Sequence[Any]],
    minute_rows: Sequence[Sequence[Any]],
    freshness_rows: Sequence[Sequence[Any]] = (),
    parked_rows: Sequence[Sequence[Any]] = (),
) -> Overview:
    revenue = tuple(
        Revenue(str(m)[:7], str(r), str(c), int(n), *(Decimal(x) for x in amounts))
        for m, r, c, n, *amounts in revenue_rows
    )
    return Overview(
        (month_starts[0][:7], month_starts[1][:7]),
        revenue,
        tuple((str(s), str(r), int(n)) for s, r, n in dead_rows),
        tuple((str(m), int(n)) for m, n in minute_rows),
        tuple((str(stage), instant(str(at))) for stage, at in freshness_rows),
        tuple(
            (str(sub), str(t), int(n), instant(str(first)), instant(str(since)))
            for sub, t, n, first, since in parked_rows
        ),
    )


def revenue_chart(model: Overview, month: str) -> str:
    rows = [r for r in model.revenue if r.month == month]
    if not rows:
        return f'<p class="muted">No invoices for periods starting in {e(month)}.</p>'
    categories = [f"{r.rail} {r.currency}" for r in rows]
    series = [Series(s, tuple(r.state(s) for r in rows)) for s in STATES]
    return bar_chart(f"Revenue for periods starting {month}", categories, series)


def render(model: Overview, invoices_href: str) -> str:
    parts: list[str] = []
    for month in model.months:
        label = "This month" if month == model.months[0] else "Last month"
        parts.append(f"<h2>{label}: periods starting {e(month)}</h2>{revenue_chart(model, month)}")
        rows = [
            [
                e(r.rail),
                e(r.currency),
                f'<a href="{e(invoices_href)}?period={e(r.month)}&amp;rail={e(r.rail)}">'
                f"{r.invoices}</a>",
            ]
            + [e(number(r.state(s))) for s in (*STATES, "refunded")]
            for r in model.revenue
            if r.month == month
        ]
        if rows:
            parts.append(
                table(
                    ["rail", "currency", "invoices", *STATES, "refunded"], rows, (2, 3, 4, 5, 6, 7)
                )
            )
    parts.append("<h2>Dead letters by reason</h2>")
    if model.dead_letters:
        chart = bar_chart(
            "Dead letters by reason",
            [f"{s}: {r}" for s, r, _ in model.dead_letters],
            [Series("records", tuple(Decimal(n) for _, _, n in model.dead_letters))],
        )
        listing = table(
            ["stage", "reason", "records"],
            [[e(s), e(r), str(n)] for s, r, n in model.dead_letters],
            (2,),
        )
        parts.append(f'<div class="charts">{chart}{listing}</div>')
    else:
        parts.append('<p class="muted">No dead letters.</p>')
    if model.freshness:
        parts.append("<h2>How far each stage has got (event time)</h2>")
        parts.append(
            table(
                ["stage", "newest"],
                [[e(st), when(at) or "nothing yet"] for st, at in model.freshness],
                id_="freshness",
            )
        )
    parts.append("<h2>Parked usage (no customer owns the subject yet)</h2>")
    if model.parked:
        parts.append(
            table(
                ["subject", "event type", "events", "first event", "parked since"],
                [
                    [e(sub), e(t), str(n), when(first), when(since)]
                    for sub, t, n, first, since in model.parked
                ],
                (2,),
                id_="parked",
            )
        )
    else:
        parts.append('<p class="muted">Nothing is parked.</p>')
    parts.append("<h2>Events ingested per minute (the newest hour)</h2>")
    if model.per_minute:
        chart = line_chart(
            "Accepted events per minute",
            [m[11:16] for m, _ in model.per_minute],
            [Series("events", tuple(Decimal(n) for _, n in model.per_minute))],
        )
        parts.append(f'<div class="charts">{chart}</div>')
    else:
        parts.append('<p class="muted">No events yet.</p>')
    return "".join(parts)
