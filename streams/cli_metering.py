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
    for problem in problems:
        console.print(f"[red]{problem}[/red]")
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
    from connectors.kafka.admin import create_topics
    from connectors.kafka.catalog_feed import publish_catalog
    from connectors.kafka.topics import rail_topic_specs
    from streams.domain.catalog import load_catalog

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
    table = Table("subject", "event type", "events", "first event", "last event", "parked since",
                  title="Unattributed usage (attributed automatically once a catalog maps the subject)")  # fmt: skip
    for row in result.rows:
        table.add_row(*(str(v) for v in row))
    console.print(table if result.rows else "nothing is parked: every subject has a customer")


def usage(
    customer: Annotated[str, typer.Option(help="Customer key")],
    from_: Annotated[str, typer.Option("--from", help="first day, YYYY-MM-DD")] = "",
    to: Annotated[str, typer.Option(help="last day, YYYY-MM-DD (inclusive)")] = "",
) -> None:
    """Usage of one customer per day, meter and dimensions (late adjustments included)."""
    from connectors.clickhouse.analyst import query
    from connectors.clickhouse.sql import literal

    today = datetime.now(UTC).date()
    first = date.fromisoformat(from_) if from_ else today - timedelta(days=30)
    last = date.fromisoformat(to) if to else today
    result = query(
        Settings().validate(),
        "SELECT day, meter, aggregation, toString(CAST(mapFromArrays(group_by, group_values), "
        "'Map(String, String)')) AS dimensions, toString(quantity), events, late_events "
        f"FROM usage_daily WHERE customer = {literal(customer)} "
        f"AND day BETWEEN {literal(first.isoformat())} AND {literal(last.isoformat())} "
        "ORDER BY day, meter, dimensions",
    )
    table = Table("day", "meter", "aggregation", "dimensions", "quantity", "events", "late",
                  title=f"Usage of {customer}, {first} to {last}")  # fmt: skip
    for row in result.rows:
        table.add_row(*(str(v) for v in row))
    console.print(table)
