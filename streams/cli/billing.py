"""``railyard simulate``, ``close-period``, ``spend`` and ``credits``: billing at the terminal."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from streams.domain.errors import ConfigError, RailyardError
from streams.domain.invoice import Invoice
from streams.settings import Settings

if TYPE_CHECKING:
    from streams.domain.catalog import Catalog
    from streams.domain.rating.simulate import SimulationResult

console = Console()


STRICT_EXIT = 3
"""``simulate --strict``'s exit status when any line was not billed."""


def simulate(
    catalog: Annotated[Path, typer.Option(help="Catalog YAML (a candidate, or the one in force)")],
    events: Annotated[Path, typer.Option(help="Usage as CloudEvents JSON lines")],
    period: Annotated[str, typer.Option(help="YYYY-MM: only periods starting that month")] = "",
    as_of: Annotated[
        str,
        typer.Option(
            "--as-of",
            help="RFC 3339 instant ingest's clock is taken to read when judging event times; "
            "by default a period's close: its end + RAILYARD_PERIOD_GRACE (the latest close "
            "that lets in the most events; docs/billing.md)",
            show_default=False,
        ),
    ] = "",
    format_: Annotated[str, typer.Option("--format", help="table or json")] = "table",
    strict: Annotated[
        bool, typer.Option(help=f"Exit {STRICT_EXIT} when any line was not billed")
    ] = False,
) -> None:
    """Price usage in batch, without Kafka, and print the invoices: the what-if tool.

    The stream must issue the same invoices for the same input, to the cent. The
    output depends only on the files, --period and --as-of, never on today's date;
    every line not billed is listed with its reason (rejected, duplicate,
    unattributed, too_old).
    """
    from streams.cli.simulate_report import not_billed_summary, parse_instant, report_json
    from streams.domain.rating.screening import default_as_of, rfc3339
    from streams.domain.rating.simulate import simulate as run
    from streams.domain.validation import Limits

    if format_ not in ("table", "json"):
        raise typer.BadParameter("must be table or json", param_hint="--format")
    _check_month(period)  # before any file is read
    try:
        given = parse_instant(as_of) if as_of else None
    except ValueError as exc:
        raise typer.BadParameter(f"not an RFC 3339 instant: {exc}", param_hint="--as-of") from exc
    s = Settings()
    limits = Limits(s.max_event_bytes, s.max_event_age, s.max_clock_skew)
    try:
        book = _read_catalog(catalog)
        lines = _read_events(events)
    except RailyardError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    month = period or None
    instant = given or default_as_of(
        book, lines, month, s.period_grace, limits, s.max_message_bytes
    )
    result = run(book, lines, month, instant, limits=limits, max_message_bytes=s.max_message_bytes)
    summary = not_billed_summary(result)
    if format_ == "json":
        print(report_json(result, instant, month))
    else:
        for invoice in result.invoices:
            console.print(invoice_table(invoice))
        console.print(summary_table(result.invoices, title="Simulated invoices"))
        console.print(f"as of {rfc3339(instant)}", markup=False)
        if summary:
            console.print(not_billed_table(result))
            console.print(summary, markup=False)
    if strict and summary:
        typer.echo(f"strict: {summary}", err=True)
        raise typer.Exit(STRICT_EXIT)


def _check_month(period: str) -> None:
    from streams.domain.rating.periods import period_of_month

    if not period:
        return
    try:
        period_of_month(1, period)
    except ValueError as exc:
        raise typer.BadParameter(f"must be YYYY-MM, got {period!r}", param_hint="--period") from exc


def _read_catalog(path: Path) -> Catalog:
    """The catalog at ``path``; ConfigError with every problem, as ``catalog validate`` lists them."""
    from streams.domain.catalog import parse_catalog

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read catalog {path}: {exc.strerror or exc}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{path}:{line}: not valid UTF-8 ({exc.reason})") from exc
    found, problems = parse_catalog(text, str(path))
    if found is None:
        listed = "\n  ".join(map(str, problems))
        raise ConfigError(f"catalog {path} has {len(problems)} problem(s):\n  {listed}")
    missing = [
        what
        for what, items in (("meters", found.meters), ("customers", found.customers))
        if not items
    ]
    if missing:
        raise ConfigError(f"catalog {path} defines no {' and no '.join(missing)}: nothing to bill")
    return found


def _read_events(path: Path) -> list[bytes]:
    from streams.cli.simulate_report import event_lines

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read events file {path}: {exc.strerror or exc}") from exc
    return event_lines(data, str(path))


def not_billed_table(result: SimulationResult) -> Table:
    """Lines not billed, by reason and dead-letter reason, with the first few line numbers."""
    groups: dict[tuple[str, str], list[int]] = {}
    for n in result.not_billed:
        key = (n.reason.value, "" if n.dead_letter is None else n.dead_letter.value)
        groups.setdefault(key, []).append(n.line)
    table = Table("not billed", "dead letter", "lines", "first lines", title="Not billed")
    for (reason, dead_letter), numbers in sorted(groups.items()):
        shown = ", ".join(map(str, numbers[:8])) + (", ..." if len(numbers) > 8 else "")
        table.add_row(reason, dead_letter, str(len(numbers)), shown)
    return table


def invoice_table(inv: Invoice) -> Table:
    table = Table(
        "line",
        "quantity",
        "unit price",
        "amount",
        title=f"{inv.number} {inv.customer_name} ({inv.customer}) via {inv.rail}: "
        f"{inv.period_start:%Y-%m-%d} to {inv.period_end:%Y-%m-%d}, {inv.currency}",
        title_justify="left",
    )
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
        table.add_row(
            inv.customer,
            inv.rail,
            f"{inv.period_start:%Y-%m-%d}",
            inv.currency,
            str(usage),
            str(inv.credits_total),
            str(inv.total),
        )
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
