"""Invoices, for finance and support: a filtered list, and one invoice with its lines,
its rail's status history and the line-by-line explanation ``railyard explain`` gives."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from connectors.clickhouse.explain import Explained, StoredInvoice
from connectors.clickhouse.sql import literal
from connectors.console.html import e, table, when
from connectors.console.svg import number
from connectors.console.timefmt import instant


@dataclass(frozen=True)
class Filters:
    period: str = ""
    """``YYYY-MM``: invoices whose period starts that month."""
    rail: str = ""
    status: str = ""
    """A delivery status (``delivered``, ``retrying``, ``failed``), a payment status
    (``paid``, ``payment_failed``...) or ``pending`` (no status from the rail yet)."""
    customer: str = ""


@dataclass(frozen=True)
class InvoiceRow:
    id: str
    number: str
    customer: str
    rail: str
    currency: str
    period_start: str
    total: Decimal
    status: str


def list_sql(f: Filters, limit: int = 500) -> str:
    where = ["1"]
    if f.period:
        where.append(f"formatDateTime(i.period_start, '%Y-%m') = {literal(f.period)}")
    if f.rail:
        where.append(f"i.rail = {literal(f.rail)}")
    if f.customer:
        where.append(f"i.customer = {literal(f.customer)}")
    status = "if(d.invoice_id = '', 'pending', coalesce(d.payment_status, d.status))"
    if f.status:
        where.append(f"{status} = {literal(f.status)}")
    return (
        "SELECT i.id, i.number, i.customer, i.rail, i.currency,"
        f" toString(toDate(i.period_start)), toString(i.total), {status}"
        " FROM invoices AS i LEFT JOIN invoice_delivery AS d ON d.invoice_id = i.id"
        f" WHERE {' AND '.join(where)} ORDER BY i.period_start DESC, i.number LIMIT {limit}"
    )


def rows(result: Sequence[Sequence[Any]]) -> tuple[InvoiceRow, ...]:
    return tuple(
        InvoiceRow(str(i), str(n), str(c), str(r), str(cur), str(p), Decimal(t), str(s))
        for i, n, c, r, cur, p, t, s in result
    )


def history_sql(invoice_id: str) -> str:
    return (
        "SELECT toString(at), status, attempt, rail_status, error_code, error_message"
        f" FROM invoice_status_raw FINAL WHERE invoice_id = {literal(invoice_id)} ORDER BY at"
    )


def render_list(
    items: Sequence[InvoiceRow],
    f: Filters,
    href: str,
    rails: Sequence[str],
    filters: bool = True,
    query: str = "",
) -> str:
    """``query`` (``token=...`` on a portal page) goes on each invoice's link."""
    after = f"?{e(query)}" if query else ""
    options = "".join(
        f"<option{' selected' if r == f.rail else ''}>{e(r)}</option>" for r in ("", *rails)
    )
    form = (
        '<form class="filters" method="get">'
        f'<input name="period" placeholder="YYYY-MM" value="{e(f.period)}" size="8">'
        f'<select name="rail" aria-label="rail">{options}</select>'
        f'<input name="status" placeholder="status" value="{e(f.status)}" size="10">'
        "<button>Filter</button></form>"
    )
    body = [
        [
            f'<a href="{e(href)}/{e(i.id)}{after}">{e(i.number)}</a>',
            e(i.customer),
            e(i.rail),
            e(i.period_start),
            e(number(i.total)),
            e(i.currency),
            e(i.status),
        ]
        for i in items
    ]
    return (
        (form if filters else "")
        + table(
            ["number", "customer", "rail", "period", "total", "currency", "status"],
            body,
            (4,),
            id_="invoices",
        )
        + f'<p class="muted">{len(items)} invoices</p>'
    )


def render_invoice(
    invoice: StoredInvoice,
    explained: Sequence[Explained] | None,
    history: Sequence[Sequence[Any]],
    explanation: bool = True,
) -> str:
    """The invoice's page; ``explanation`` False leaves out the evidence (the portal's)."""
    head = (
        '<div class="cards">'
        f'<div class="card">customer<br><b>{e(invoice.customer)}</b></div>'
        f'<div class="card">period<br>{when(invoice.period_start)} ..'
        f" {when(invoice.period_end)}</div>"
        f'<div class="card">total<br><b>{e(number(invoice.total))} {e(invoice.currency)}</b>'
        "</div>"
        f'<div class="card">catalog<br><code>{e(invoice.catalog_version)}</code></div></div>'
    )
    lines = table(
        ["#", "line", "quantity", "unit", "amount"],
        [
            [
                str(ln.line_no),
                e(ln.description),
                e("" if ln.quantity is None else number(ln.quantity)),
                e("" if ln.unit_amount is None else number(ln.unit_amount)),
                e(number(ln.amount)),
            ]
            for ln in invoice.lines
        ],
        (2, 3, 4),
        id_="lines",
    )
    steps = (
        table(
            ["when", "status", "attempt", "rail says", "error"],
            [
                [
                    when(instant(str(at))),
                    e(s),
                    e(a),
                    e(rs or ""),
                    e(" ".join(x for x in (c, m) if x)),
                ]
                for at, s, a, rs, c, m in history
            ],
            (2,),
            id_="history",
        )
        if history
        else '<p class="muted">No status from the rail yet.</p>'
    )
    why = ""
    if explanation:
        why = "<h2>Why each line says what it says</h2>" + render_explanation(invoice, explained)
    return head + "<h2>Lines</h2>" + lines + "<h2>Rail status history</h2>" + steps + why


def render_explanation(invoice: StoredInvoice, explained: Sequence[Explained] | None) -> str:
    if explained is None:
        return (
            '<p class="muted">The catalog version this invoice was rated under is not in'
            " the store, so its lines cannot be recomputed.</p>"
        )
    out = []
    for x in explained:
        ev = x.evidence
        facts = ""
        if ev is not None:
            recomputed = "none" if ev.quantity is None else number(ev.quantity)
            facts = (
                f"<br>from the events: {e(recomputed)}; {ev.events:,} events ({ev.late} late),"
                f" {when(ev.first)} .. {when(ev.last)}; on usage.accepted "
                + e(", ".join(f"p{p} {a}-{b}" for p, a, b in ev.offsets))
            )
        css = "ok" if x.verdict in ("ok", "not usage") else "bad"
        maths = "".join(f"<br><code>{e(step)}</code>" for step in x.arithmetic)
        out.append(
            f"<li><b>{e(x.line.description)}</b>"
            f' <span class="{css}">{e(x.verdict)}</span>{facts}{maths}</li>'
        )
    note = ""
    if invoice.corrected_by:
        note = f"<p>Corrected by {e(', '.join(invoice.corrected_by))} (late usage).</p>"
    return f'<ol class="explain">{"".join(out)}</ol>{note}'
