"""Customers, for support and account managers (and, through the portal, the customer
itself): the list, and one customer's usage over time, spend against its commitment and
cap, credits left, subjects and billing profile."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from connectors.clickhouse.sql import literal
from connectors.console.html import e, table, when
from connectors.console.svg import Series, bar_chart, line_chart, number
from connectors.console.timefmt import instant
from streams.domain.catalog import Catalog

WINDOWS = {"30d": ("day", 30), "7d": ("day", 7), "48h": ("hour", 48)}
"""The usage chart's windows: name -> (bucket, how many buckets up to the newest usage)."""


@dataclass(frozen=True)
class CustomerRow:
    key: str
    name: str
    rail: str
    currency: str
    invoices: int
    invoiced: Decimal


def customer_rows(
    catalog: Catalog, invoice_rows: Sequence[Sequence[Any]], q: str = ""
) -> tuple[CustomerRow, ...]:
    """The catalog's customers matching ``q`` (in key or name, any case), with what they
    were invoiced (``invoice_rows``: customer, invoices, total)."""
    totals = {str(c): (int(n), Decimal(t)) for c, n, t in invoice_rows}
    needle = q.strip().lower()
    return tuple(
        CustomerRow(
            c.key, c.name, c.billing.rail, c.billing.currency, *totals.get(c.key, (0, Decimal(0)))
        )
        for c in sorted(catalog.customers, key=lambda c: c.key)
        if needle in c.key.lower() or needle in c.name.lower()
    )


INVOICED_SQL = "SELECT customer, count(), toString(sum(total)) FROM invoices GROUP BY customer"


def latest_usage_sql(customer: str) -> str:
    return f"SELECT toString(max(day)) FROM usage_daily WHERE customer = {literal(customer)}"


def usage_sql(customer: str, window: str, newest: date) -> str:
    """Usage per meter and bucket, the meter's groups added up as an invoice line adds them."""
    bucket, count = WINDOWS[window]
    who = f"customer = {literal(customer)}"
    if bucket == "day":
        start = newest - timedelta(days=count - 1)
        return (
            "SELECT toString(day) AS at, meter, toString(sum(quantity)) FROM usage_daily"
            f" WHERE {who} AND day BETWEEN {literal(start.isoformat())}"
            f" AND {literal(newest.isoformat())} GROUP BY at, meter ORDER BY meter, at"
        )
    end = datetime.combine(newest + timedelta(days=1), datetime.min.time())
    start = end - timedelta(hours=count)
    return (
        "SELECT toString(window_start) AS at, meter, toString(sum(value)) FROM usage_windows"
        f" WHERE {who} AND window_start >= {literal(start.isoformat(sep=' '))}"
        f" AND window_start < {literal(end.isoformat(sep=' '))}"
        " GROUP BY at, meter ORDER BY meter, at"
    )


def spend_sql(customer: str) -> str:
    return (
        "SELECT currency, toString(period_start), toString(period_end), toString(usage_amount),"
        " toString(credits_total), toString(total), toString(as_of) FROM billing_spend"
        f" WHERE customer = {literal(customer)} ORDER BY period_start DESC LIMIT 1"
    )


def credits_sql(customer: str) -> str:
    return (
        "SELECT grant, currency, toString(granted), toString(consumed), toString(remaining)"
        f" FROM credit_balances WHERE customer = {literal(customer)} ORDER BY grant"
    )


@dataclass(frozen=True)
class Usage:
    window: str
    meters: tuple[tuple[str, tuple[tuple[str, Decimal], ...]], ...]
    """Per meter, (bucket, quantity) in time order."""


def usage(window: str, result: Sequence[Sequence[Any]]) -> Usage:
    by_meter: dict[str, list[tuple[str, Decimal]]] = {}
    for at, meter, quantity in result:
        by_meter.setdefault(str(meter), []).append((str(at), Decimal(quantity)))
    return Usage(window, tuple((m, tuple(points)) for m, points in sorted(by_meter.items())))


@dataclass(frozen=True)
class Spend:
    currency: str
    period_start: datetime | None
    period_end: datetime | None
    usage_amount: Decimal
    credits: Decimal
    total: Decimal
    as_of: datetime | None
    commitment: Decimal | None
    cap: Decimal | None
    credits_left: Decimal


def spend(
    catalog: Catalog,
    customer: str,
    now: datetime,
    spend_rows: Sequence[Sequence[Any]],
    credit_rows: Sequence[Sequence[Any]],
) -> Spend | None:
    """The open period's running spend beside the commitment and cap in force at ``now``."""
    if not spend_rows:
        return None
    currency, start, end, usage_amount, credits, total, as_of = spend_rows[0]
    sub = catalog.subscription_for(customer, now)
    commitment = cap = None
    if sub is not None:
        plan = catalog.plan(sub.plan)
        if sub.contract is not None:
            commitment, cap = sub.contract.minimum_commitment, sub.contract.maximum_spend
        if cap is None and plan is not None:
            cap = plan.maximum_spend
    left = sum((Decimal(r[4]) for r in credit_rows if r[1] == currency), Decimal(0))
    return Spend(
        str(currency),
        instant(str(start)),
        instant(str(end)),
        Decimal(usage_amount),
        Decimal(credits),
        Decimal(total),
        instant(str(as_of)),
        commitment,
        cap,
        left,
    )


def spend_chart(s: Spend) -> str:
    bars = [("spend", s.total)]
    bars += [(name, v) for name, v in (("commitment", s.commitment), ("cap", s.cap)) if v]
    bars.append(("credits left", s.credits_left))
    return bar_chart(
        f"Open period's spend ({s.currency}) against commitment, cap and credits",
        [name for name, _ in bars],
        [Series(s.currency, tuple(v for _, v in bars))],
    )


def usage_charts(u: Usage) -> str:
    if not u.meters:
        return '<p class="muted">No usage in this window.</p>'
    return (
        '<div class="charts">'
        + "".join(
            line_chart(
                f"{meter} per {WINDOWS[u.window][0]}",
                [at for at, _ in points],
                [Series(meter, tuple(q for _, q in points))],
            )
            for meter, points in u.meters
        )
        + "</div>"
    )


def window_links(u: Usage, href: str, query: str = "") -> str:
    """``query`` (``token=...`` on a portal page) goes on every link, before the window."""
    before = f"{e(query)}&amp;" if query else ""
    return (
        "<p>Window: "
        + " · ".join(
            f"<b>{e(w)}</b>"
            if w == u.window
            else f'<a href="{e(href)}?{before}window={e(w)}">{e(w)}</a>'
            for w in WINDOWS
        )
        + "</p>"
    )


def render_list(items: Sequence[CustomerRow], q: str, href: str) -> str:
    form = (
        f'<form class="filters" method="get"><input name="q" value="{e(q)}"'
        ' placeholder="search key or name"><button>Search</button></form>'
    )
    return form + table(
        ["customer", "name", "rail", "currency", "invoices", "invoiced"],
        [
            [
                f'<a href="{e(href)}/{e(c.key)}">{e(c.key)}</a>',
                e(c.name),
                e(c.rail),
                e(c.currency),
                str(c.invoices),
                e(number(c.invoiced)),
            ]
            for c in items
        ],
        (4, 5),
        id_="customers",
    )


def render_spend(s: Spend | None) -> str:
    if s is None:
        return '<p class="muted">No running spend yet.</p>'
    facts = table(
        ["period", "usage", "credits applied", "total so far", "as of"],
        [
            [
                f"{when(s.period_start)} .. {when(s.period_end)}",
                e(number(s.usage_amount)),
                e(number(s.credits)),
                e(f"{number(s.total)} {s.currency}"),
                when(s.as_of),
            ]
        ],
        (1, 2, 3),
    )
    return f'<div class="charts">{spend_chart(s)}</div>' + facts


def render_profile(catalog: Catalog, customer: str) -> str:
    c = catalog.customer(customer)
    if c is None:
        return '<p class="muted">Not in the catalog in force.</p>'
    b = c.billing
    profile = table(
        ["rail", "currency", "anchor day", "segment", "region", "account"],
        [
            [
                e(b.rail),
                e(b.currency),
                str(b.anchor_day),
                e(b.segment),
                e(b.region),
                e(b.account or ""),
            ]
        ],
    )
    subjects = table(
        ["subject", "from", "to"],
        [
            [e(a.subject), when(a.effective_from), when(a.effective_to) or "until further notice"]
            for a in catalog.assignments
            if a.customer == customer
        ],
        id_="subjects",
    )
    return f"<h2>Billing profile</h2>{profile}<h2>Subjects</h2>{subjects}"


def render_credits(credit_rows: Sequence[Sequence[Any]]) -> str:
    if not credit_rows:
        return ""
    return "<h2>Credits</h2>" + table(
        ["grant", "currency", "granted", "consumed", "remaining"],
        [
            [e(g), e(c), e(number(Decimal(a))), e(number(Decimal(b))), e(number(Decimal(r)))]
            for g, c, a, b, r in credit_rows
        ],
        (2, 3, 4),
    )
