"""``railyard simulate``, ``close-period``, ``spend`` and ``credits``: billing at the terminal."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from streams.domain.invoice import Invoice
from streams.settings import Settings

console = Console()


def simulate(
    catalog: Annotated[Path, typer.Option(help="Catalog YAML (a candidate, or the one in force)")],
    events: Annotated[Path, typer.Option(help="Usage as CloudEvents JSON lines")],
    period: Annotated[str, typer.Option(help="YYYY-MM: only periods starting that month")] = "",
    format_: Annotated[str, typer.Option("--format", help="table or json")] = "table",
) -> None:
    """Price usage in batch, without Kafka, and print the invoices: the what-if tool.

    The stream must issue the same invoices for the same input, to the cent.
    """
    from streams.domain.catalog import load_catalog
    from streams.domain.rating.simulate import simulate as run
    from streams.domain.validation import Limits
    from streams.domain.windows import WindowSize
    from streams.invoice_records import invoice_to_json

    if format_ not in ("table", "json"):
        raise typer.BadParameter("--format must be table or json")
    s = Settings()
    result = run(
        load_catalog(catalog),
        events.read_text().splitlines(),
        period or None,
        datetime.now(UTC),
        window=WindowSize(s.window_size),
        limits=Limits(s.max_event_bytes, s.max_event_age, s.max_clock_skew),
        max_message_bytes=s.max_message_bytes,
    )
    if format_ == "json":
        print(json.dumps([invoice_to_json(i) for i in result.invoices], indent=2))
        return
    for invoice in result.invoices:
        console.print(invoice_table(invoice))
    console.print(summary_table(result.invoices, title="Simulated invoices"))
    counts = {"rejected": sum(result.rejected.values()), "duplicates": result.duplicates,
              "unattributed": result.unattributed}  # fmt: skip
    skipped = {k: v for k, v in counts.items() if v}
    if skipped:
        console.print("not billed: " + ", ".join(f"{v} {k}" for k, v in sorted(skipped.items())))


def invoice_table(inv: Invoice) -> Table:
    table = Table(
        "line", "quantity", "unit price", "amount",
        title=f"{inv.number} {inv.customer_name} ({inv.customer}) via {inv.rail}: "
        f"{inv.period_start:%Y-%m-%d} to {inv.period_end:%Y-%m-%d}, {inv.currency}",
        title_justify="left",
    )  # fmt: skip
    for line in inv.lines:
        dims = ", ".join(v for _, v in line.dimensions)
        text = f"{line.description}" + (
            f" [{dims}]" if dims and dims not in line.description else ""
        )
        table.add_row(
            text,
            _num(line.quantity),
            _num(line.unit_amount) if not line.tiers else f"{len(line.tiers)} tiers",
            str(line.amount),
        )
    table.add_row("[b]subtotal[/b]", "", "", f"[b]{inv.subtotal}[/b]")
    for credit in inv.credits:
        table.add_row(f"credit {credit.grant}", "", "", f"-{credit.amount}")
    table.add_row("[b]total[/b]", "", "", f"[b]{inv.total}[/b]")
    return table


def summary_table(invoices: Iterable[Invoice], title: str) -> Table:
    from streams.domain.rating.assemble import usage_amount

    table = Table(
        "customer", "rail", "period", "currency", "usage", "credits", "total", title=title
    )
    for inv in sorted(invoices, key=lambda i: (i.rail, i.customer, i.period_start)):
        usage = usage_amount(inv)
        table.add_row(inv.customer, inv.rail, f"{inv.period_start:%Y-%m-%d}", inv.currency,
                      str(usage), str(inv.credits_total), str(inv.total))  # fmt: skip
    return table


def _num(value: Decimal | None) -> str:
    if value is None:
        return ""
    return f"{value.normalize():f}"


def close_period(
    period: Annotated[str, typer.Option(help="YYYY-MM: close every period starting that month")],
) -> None:
    """Close billing periods now instead of waiting for event time to pass their end + grace.

    Each customer's period starting in the month is invoiced once; closing again
    issues nothing new. Usage that arrives later is billed as an adjustment.
    """
    from connectors.kafka.billing_commands import request_close

    try:
        request_close(Settings().validate(), period)
    except ValueError as exc:
        raise typer.BadParameter("--period must be YYYY-MM") from exc
    console.print(f"close of {period} requested: invoices follow on the rail topics")


def spend() -> None:
    """Each customer's running spend in its open period, as rated so far."""
    _print_query(
        "SELECT customer, currency, toDate(period_start), toString(usage_amount), "
        "toString(credits_total), toString(total), as_of FROM billing_spend "
        "ORDER BY customer, period_start",
        ("customer", "currency", "period", "usage", "credits", "total", "as of (event time)"),
        "Open-period spend",
    )


def credits() -> None:
    """Prepaid credit balance of every grant, as of the latest rating."""
    _print_query(
        "SELECT customer, grant, currency, toString(granted), toString(consumed), "
        "toString(remaining), expires_at FROM credit_balances ORDER BY customer, grant",
        ("customer", "grant", "currency", "granted", "consumed", "remaining", "expires"),
        "Credit balances",
    )


def _print_query(sql: str, headers: tuple[str, ...], title: str) -> None:
    from connectors.clickhouse.analyst import query

    result = query(Settings().validate(), sql)
    table = Table(*headers, title=title)
    for row in result.rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)
