"""``railyard catalog ...``, ``railyard unattributed`` and ``railyard usage``."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from streams.settings import Settings

catalog_app = typer.Typer(help="Validate and publish the billing catalog.", no_args_is_help=True)
console = Console()


@catalog_app.command("validate")
def validate(file: Path) -> None:
    """Report every problem in a catalog file, with its line."""
    from streams.domain.catalog import parse_catalog

    catalog, problems = parse_catalog(file.read_text(), str(file))
    for problem in problems:  # one line each, never wrapped or read as markup: grep-able
        console.print(str(problem), style="red", markup=False, soft_wrap=True)
    if problems or catalog is None:
        console.print(f"{len(problems)} problem(s)")
        raise typer.Exit(1)
    console.print(
        f"ok: catalog {catalog.version}: {len(catalog.meters)} meters, "
        f"{len(catalog.customers)} customers, {len(catalog.assignments)} subject assignments, "
        f"{len(catalog.plans)} plans, {len(catalog.subscriptions)} subscriptions"
    )


@catalog_app.command("apply")
def apply(file: Path) -> None:
    """Validate, then publish to the catalog topic: running workers pick it up at once."""
    from connectors.files import load_catalog
    from connectors.kafka.admin import create_topics
    from connectors.kafka.catalog_feed import publish_catalog
    from connectors.kafka.topics import rail_topic_specs

    settings = Settings().validate()
    catalog = load_catalog(file)
    rails = {c.billing.rail for c in catalog.customers}
    create_topics(settings, rail_topic_specs(settings, rails))  # connectors can subscribe now
    version = publish_catalog(settings, catalog)
    console.print(f"catalog {version} is now in force (rails: {', '.join(sorted(rails))})")


def unattributed() -> None:
    """Usage parked because no customer claims its subject (yet)."""
    from connectors.clickhouse.analyst import query

    result = query(
        Settings().validate(),
        "SELECT subject, type, events, first_event_at, last_event_at, parked_since "
        "FROM unattributed_usage ORDER BY parked_since, subject, type",
    )
    table = Table(
        "subject",
        "event type",
        "events",
        "first event",
        "last event",
        "parked since",
        title="Unattributed usage (attributed automatically once a catalog maps the subject)",
    )
    for row in result.rows:
        table.add_row(*(str(v) for v in row))
    console.print(table if result.rows else "nothing is parked: every subject has a customer")


def usage(
    customer: Annotated[str, typer.Option(help="Customer key")],
    from_: Annotated[str, typer.Option("--from", help="first day, YYYY-MM-DD")] = "",
    to: Annotated[str, typer.Option(help="last day, YYYY-MM-DD (inclusive)")] = "",
) -> None:
    """Exact usage of one customer per day, meter and dimensions, then over the whole span
    (late usage included): the quantities an invoice for those days would bill."""
    from connectors.clickhouse.analyst import query

    today = datetime.now(UTC).date()
    first = date.fromisoformat(from_) if from_ else today - timedelta(days=30)
    last = date.fromisoformat(to) if to else today
    settings = Settings().validate()
    daily = query(settings, usage_daily_sql(customer, first, last))
    _print_rows(f"Usage of {customer} per day, {first} to {last}", ["day", *_USAGE], daily.rows)
    span = query(settings, usage_span_sql(customer, first, last))
    title = f"Usage of {customer} over {first} to {last} (what an invoice bills)"
    _print_rows(title, _USAGE, span.rows)


_USAGE = ["meter", "aggregation", "dimensions", "quantity", "events", "late"]


def _print_rows(title: str, columns: list[str], rows: list[list[object]]) -> None:
    table = Table(*columns, title=title)
    for row in rows:
        table.add_row(*(str(v) for v in row))
    console.print(table)


_DIMENSIONS = "toString(dimensions) AS dims"


def usage_daily_sql(customer: str, first: date, last: date) -> str:
    """One customer's rows of ``usage_daily`` for the days ``first`` to ``last`` inclusive."""
    from connectors.clickhouse.sql import literal

    return (
        f"SELECT day, meter, aggregation, {_DIMENSIONS}, toString(quantity), events, late_events "
        f"FROM usage_daily WHERE customer = {literal(customer)} "
        f"AND day BETWEEN {literal(first.isoformat())} AND {literal(last.isoformat())} "
        "ORDER BY day, meter, dims"
    )


def usage_span_sql(customer: str, first: date, last: date) -> str:
    """One customer's exact quantities over the days ``first`` to ``last`` inclusive
    (``usage_quantity`` over [first, last + 1 day)): AVG, UNIQUE_COUNT and LATEST over the
    whole span, not added up from days."""
    from connectors.clickhouse.sql import literal

    end = last + timedelta(days=1)
    return (
        f"SELECT meter, aggregation, {_DIMENSIONS}, toString(quantity), events, late_events "
        f"FROM usage_quantity(from = {literal(first.isoformat())}, to = {literal(end.isoformat())}) "
        f"WHERE customer = {literal(customer)} ORDER BY meter, dims"
    )
