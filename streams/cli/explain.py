"""``railyard explain``: why each line of an invoice says what it says.

For every usage line: the meter and group, how the meter aggregates, the quantity
recomputed from the stored events (and whether it equals the billed one), how many
events, their first and last time, where they sit on ``usage.accepted``, how many came
late; then the price arithmetic tier by tier. ``--check`` makes a disagreement an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from rich.console import Console
from rich.table import Table

from connectors.clickhouse.explain import (
    Explained,
    StoredInvoice,
    _included,
    explain,
    explain_lines,
)
from streams.domain.catalog import Catalog
from streams.domain.errors import RailyardError
from streams.settings import Settings

__all__ = ["Explained", "_included", "explain", "explain_lines"]


def print_explanation(
    console: Console, invoice: StoredInvoice, catalog: Catalog, explained: list[Explained]
) -> None:
    meters = {m.key: m for m in catalog.meters}
    table = Table(
        "#",
        "line",
        "quantity: billed, from events",
        "events (late), first .. last",
        "on usage.accepted",
        "amount",
        "check",
        title=(
            f"{invoice.number} for {invoice.customer}, {invoice.period_start:%Y-%m-%d} .."
            f" {invoice.period_end:%Y-%m-%d}, catalog {invoice.catalog_version}:"
            f" {invoice.total} {invoice.currency}"
        ),
    )
    for e in explained:
        ln, ev = e.line, e.evidence
        quantity = events = offsets = ""
        if ev is not None and ln.quantity is not None:
            meter = meters.get(ln.meter or "")
            recomputed = "none" if ev.quantity is None else f"{ev.quantity.normalize():f}"
            quantity = f"{ln.quantity.normalize():f}, {recomputed}"
            if meter is not None:
                quantity += f"\n{meter.aggregation} of {meter.value_property or 'events'}"
            events = f"{ev.events:,} ({ev.late} late)"
            if ev.first is not None and ev.last is not None:
                events += f"\n{ev.first:%m-%d %H:%M} .. {ev.last:%m-%d %H:%M}"
            offsets = "\n".join(f"p{p} {a}-{b}" for p, a, b in ev.offsets)
        table.add_row(
            str(ln.line_no), ln.description, quantity, events, offsets, f"{ln.amount:f}", e.verdict
        )
    console.print(table)
    for e in explained:
        if e.arithmetic:
            console.print(f"  line {e.line.line_no}, {e.line.price_key}:")
            for step in e.arithmetic:
                console.print(f"    {step}")
    if invoice.corrected_by:
        console.print(f"  corrected by {', '.join(invoice.corrected_by)} (late usage)")


class NotInStore(RailyardError):
    """An invoice, or the catalog version it was rated under, the store does not hold."""


@dataclass
class Checked:
    """What checking a set of invoices found."""

    lines: int = 0
    usage_lines: int = 0
    """Lines recomputed from their events."""
    equal: int = 0
    mismatched: list[tuple[StoredInvoice, Explained]] = field(default_factory=list)


def check_invoices(
    settings: Settings, keys: Iterable[str], console: Console, shown: Mapping[str, str]
) -> Checked:
    """Explain every invoice in ``keys``; print those in ``shown`` under their header."""
    checked = Checked()
    for key in keys:
        found = explain(settings, key)
        if found is None:
            raise NotInStore(f"no invoice {key} (or its catalog version) in the store")
        stored, catalog, explained = found
        if key in shown:
            if shown[key]:
                console.print(shown[key])
            print_explanation(console, stored, catalog, explained)
        for e in explained:
            checked.lines += 1
            checked.usage_lines += e.evidence is not None
            checked.equal += e.verdict == "ok"
            if e.verdict == "MISMATCH":
                checked.mismatched.append((stored, e))
    return checked
