"""Production invoices against the reference: every difference, readable.

An invoice is compared on what it bills: its identity (customer, period,
currency, id), then line by line (kind, price, dimension values, billable
quantity of usage lines, amount, and their order), subtotal, each credit
application, credits total and total, all to the minor unit. A difference names the seed, the
customer, the period and the line, with the expected (reference) and the got
(production) value.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from fractions import Fraction
from typing import Any

from streams.domain.invoice import Invoice

from .rater import Bill, Line


def _line(line: Line) -> tuple[Any, ...]:
    quantity = line.quantity if line.kind == "usage" else None
    return (line.kind, line.price_key, line.dimensions, quantity, line.amount)


def _got(line: Any) -> tuple[Any, ...]:
    kind = str(line.kind)
    quantity = Fraction(line.quantity) if kind == "usage" and line.quantity is not None else None
    return (kind, line.price_key, tuple(line.dimensions), quantity, Fraction(line.amount))


def _keyed(rows: Iterable[tuple[Any, ...]]) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """Lines by (kind, price, dimension values, n-th such line), in invoice order: a
    missing or extra line is named as such rather than shifting every line after it."""
    out: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for row in rows:
        n = 0
        while (*row[:3], n) in out:
            n += 1
        out[(*row[:3], n)] = row
    return out


def _show(row: tuple[Any, ...] | None) -> str:
    if row is None:
        return "(none)"
    kind, key, dims, quantity, amount = row
    where = key or ""
    if dims:
        where += "[" + ",".join(f"{k}={v}" for k, v in dims) + "]"
    q = f" q={_dec(quantity)}" if quantity is not None else ""
    return f"{kind} {where}{q} amount={_dec(amount)}"


def _dec(value: Fraction | Decimal) -> str:
    if isinstance(value, Decimal):
        return str(value)
    d = Decimal(value.numerator) / Decimal(value.denominator)
    return f"{d.normalize():f}"


def differences(
    expected: Iterable[Bill], got: Iterable[Invoice], *, seed: object, asked: str
) -> list[str]:
    """Every difference between the reference's and production's invoices."""
    want = {(b.customer, b.period.start): b for b in expected}
    have = {(i.customer, i.period_start): i for i in got}
    out: list[str] = []
    head = f"seed {seed} ({asked})"
    for key in sorted(set(want) | set(have)):
        customer, start = key
        where = f"{head}: {customer} period {start:%Y-%m-%d}"
        bill, invoice = want.get(key), have.get(key)
        if bill is None or invoice is None:
            out.append(
                f"{where}: expected {'an invoice' if bill else 'none'}, got "
                f"{'one (total ' + str(invoice.total) + ')' if invoice else 'none'}"
            )
            continue
        out += _compare(where, bill, invoice)
    return out


def _compare(where: str, bill: Bill, invoice: Invoice) -> list[str]:
    out: list[str] = []
    if (bill.period.end, bill.currency, bill.invoice_id) != (
        invoice.period_end,
        invoice.currency,
        invoice.id,
    ):
        out.append(
            f"{where}: identity expected ({bill.period.end}, {bill.currency}, {bill.invoice_id}) "
            f"got ({invoice.period_end}, {invoice.currency}, {invoice.id})"
        )
    mine, theirs = _keyed(_line(x) for x in bill.lines), _keyed(_got(x) for x in invoice.lines)
    for key in list(mine) + [k for k in theirs if k not in mine]:
        m, t = mine.get(key), theirs.get(key)
        if m != t:
            out.append(f"{where}: expected {_show(m)}; got {_show(t)}")
    if not out and list(mine) != list(theirs):
        out.append(f"{where}: lines in another order: expected {list(mine)}, got {list(theirs)}")
    sums = [
        ("subtotal", bill.subtotal, invoice.subtotal),
        ("credits_total", bill.credits_total, invoice.credits_total),
        ("total", bill.total, invoice.total),
    ]
    for name, m_value, t_value in sums:
        if m_value != Fraction(t_value):
            out.append(f"{where}: {name} expected {_dec(m_value)} got {t_value}")
    credits = [(g, a) for g, a in bill.credits]
    applied = [(c.grant, Fraction(c.amount)) for c in invoice.credits]
    if credits != applied:
        show = lambda xs: ", ".join(f"{g}={_dec(a)}" for g, a in xs) or "none"  # noqa: E731
        out.append(f"{where}: credits expected {show(credits)}; got {show(applied)}")
    return out
