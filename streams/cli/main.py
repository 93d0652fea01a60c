"""The ``railyard`` command."""

from __future__ import annotations

import json
import logging
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from streams import compiled
from streams.cli.api import api, api_keys_app
from streams.cli.billing import close_period, credits, simulate, spend
from streams.cli.console import console_app
from streams.cli.metering import catalog_app, unattributed, usage
from streams.cli.rails import invoices, rails_app
from streams.cli.stack import stack_app, topics_app
from streams.domain.errors import RailyardError
from streams.settings import Settings

if TYPE_CHECKING:
    from streams.domain.catalog import Catalog

app = typer.Typer(
    help="Railyard: usage metering and multi-rail billing on Kafka.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


app.add_typer(stack_app, name="stack", help="Run the local Kafka broker (KRaft).")
app.add_typer(catalog_app, name="catalog")
app.command("unattributed")(unattributed)
app.command("usage")(usage)
app.command("simulate")(simulate)
app.command("close-period")(close_period)
app.command("spend")(spend)
app.command("credits")(credits)
app.add_typer(topics_app, name="topics", help="Create and list Railyard's topics.")
app.add_typer(rails_app, name="rails")
app.command("invoices")(invoices)
app.add_typer(console_app, name="console")
app.command("api")(api)
app.add_typer(api_keys_app, name="api-keys")


def settings() -> Settings:
    return Settings().validate()


def _logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )


@app.command()
def worker(loglevel: str = "info") -> None:
    """Run the stream worker (Faust agents: ingest_usage, ...)."""
    import faust

    from streams.agents.app import build_worker_app
    from streams.agents.runtime import tune_gc, use_event_loop

    _logging()
    current = settings()
    loop = use_event_loop(current.event_loop)  # before the app makes its loop
    log = logging.getLogger("railyard.worker")
    log.info("event loop: %s; %s", loop, compiled.STATUS.describe())
    faust_app = build_worker_app(current)
    tune_gc()
    faust.Worker(faust_app, loglevel=loglevel, quiet=True).execute_from_commandline()


@app.command()
def sink(loglevel: str = "INFO") -> None:
    """Run the ClickHouse sink connector (and, when embedded, the analyst query endpoint)."""
    from connectors.clickhouse.service import run_sink
    from streams.agents.runtime import tune_gc

    _logging(loglevel)
    tune_gc()
    run_sink(settings())


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="A read-only SQL statement.")],
    format: Annotated[str, typer.Option(help="table | json | tsv")] = "table",
) -> None:
    """Query ClickHouse while the pipeline runs (embedded: through the sink that owns it)."""
    from connectors.clickhouse.analyst import query as run

    result = run(settings(), query)
    if format == "json":
        console.print_json(
            json.dumps([dict(zip(result.columns, r, strict=True)) for r in result.rows])
        )
    elif format == "tsv":
        sys.stdout.write("\t".join(result.columns) + "\n")
        for row in result.rows:
            sys.stdout.write("\t".join(str(v) for v in row) + "\n")
    else:
        table = Table(*result.columns)
        for row in result.rows:
            table.add_row(*(str(v) for v in row))
        console.print(table)


@app.command()
def produce(
    file: Annotated[Path, typer.Option("--file", "-f", help="CloudEvents JSON, one per line.")],
    passthrough_invalid: Annotated[
        bool,
        typer.Option(help="Also publish rejected lines as-is, so the stream dead-letters them."),
    ] = False,
    batch_events: int = 500,
) -> None:
    """Validate and publish usage events to the `usage` topic, keyed by subject."""
    from connectors.files import load_meters
    from connectors.kafka.producer import UsageProducer, produce_file
    from streams.domain.validation import Limits

    s = settings()
    total = sum(1 for _ in open(file, "rb"))
    limits = Limits(s.max_event_bytes, s.max_event_age, s.max_clock_skew)
    producer = UsageProducer(s, batch_events=batch_events)
    with _progress() as progress:
        task = progress.add_task("producing", total=total)
        summary = produce_file(
            file,
            producer,
            limits=limits,
            meters=load_meters(str(s.catalog)),
            passthrough_invalid=passthrough_invalid,
            progress=lambda n: progress.advance(task, n),
        )
        progress.update(task, completed=total)
    table = Table("lines", "sent", "rejected", "passed through", "delivered", "failed")
    table.add_row(
        str(summary.lines),
        str(summary.sent),
        str(len(summary.rejected)),
        str(summary.passed_through),
        str(summary.delivery.delivered),
        str(summary.delivery.failed),
    )
    console.print(table)
    if summary.rejected:
        reasons = Counter(str(r.reason) for _, r in summary.rejected)
        rej = Table("reason", "lines", "first lines")
        for reason, count in reasons.most_common():
            first = [str(n) for n, r in summary.rejected if r.reason == reason][:5]
            rej.add_row(reason, str(count), ", ".join(first))
        console.print(rej)
        for number, r in summary.rejected[:10]:
            err_console.print(f"line {number}: {r}")
    if summary.delivery.failed:
        raise typer.Exit(1)


@app.command()
def generate(
    out: Annotated[Path, typer.Option("--out", "-o")],
    events: int = 10_000,
    seed: int = 7,
    days: float = 1.0,
    start: Annotated[str, typer.Option(help="RFC 3339; default: now minus --days")] = "",
    catalog: Annotated[
        Path | None,
        typer.Option(
            help="Draw customers and subjects from this catalog. Default: the catalog in "
            "force on the `catalog` topic if a broker answers, else RAILYARD_CATALOG."
        ),
    ] = None,
    synthetic: Annotated[
        bool,
        typer.Option(
            help="Make up --customers customers from the seed instead: no catalog owns "
            "their subjects, so a deployment parks their events as unattributed."
        ),
    ] = False,
    customers: Annotated[int, typer.Option(help="With --synthetic only.")] = 20,
    duplicate_rate: float = 0.0,
    invalid_rate: float = 0.0,
    late_rate: float = 0.0,
    unknown_subject_rate: float = 0.0,
) -> None:
    """Write a deterministic synthetic workload (CloudEvents JSONL) from a seed.

    The events come from the customers and subjects of the catalog in force, so each
    one bills to a customer whatever the seed; the seed draws their traffic.
    """
    from connectors.files import write_jsonl
    from streams.domain.workload import (
        GeneratedEvent,
        Population,
        WorkloadSpec,
        catalog_population,
        iter_events,
    )

    duration = timedelta(days=days)
    begin = (
        datetime.fromisoformat(start).astimezone(UTC)
        if start
        else (datetime.now(UTC) - duration).replace(microsecond=0)
    )
    population: Population | None = None
    if not synthetic:
        found, origin = _catalog_in_force(settings(), catalog)
        population = catalog_population(found, seed, begin, begin + duration)
        customers = len(population.customers)
        err_console.print(
            f"customers and subjects: {customers} customers of catalog {found.version} ({origin})"
        )
    spec = WorkloadSpec(
        seed=seed,
        customers=customers,
        events=events,
        start=begin,
        duration=duration,
        duplicate_rate=duplicate_rate,
        invalid_rate=invalid_rate,
        late_rate=late_rate,
        unknown_subject_rate=unknown_subject_rate,
    )
    with _progress() as progress:
        task = progress.add_task("generating", total=events)

        def counted() -> Iterator[GeneratedEvent]:
            for i, ev in enumerate(iter_events(spec, population), 1):
                if i % 5000 == 0:
                    progress.update(task, completed=i)
                yield ev

        written = write_jsonl(counted(), out)
        progress.update(task, completed=events)
    console.print(f"wrote {written} events to {out}")


@app.command(name="explain")
def explain_command(
    invoice: Annotated[str | None, typer.Argument(help="Invoice number or id.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every invoice in the store.")] = False,
    check: Annotated[
        bool, typer.Option(help="Exit 1 when a line's quantity or arithmetic disagrees.")
    ] = False,
) -> None:
    """Why each line of an invoice says what it says, recomputed from the stored events."""
    from connectors.clickhouse.explain import invoice_numbers
    from streams.cli.explain import NotInStore, check_invoices

    current = settings()
    keys = invoice_numbers(current) if all_ else [invoice] if invoice else []
    if not keys:
        raise typer.BadParameter("name an invoice, or --all")
    try:
        checked = check_invoices(current, keys, console, {} if all_ else {keys[0]: ""})
    except NotInStore as exc:
        err_console.print(str(exc))
        raise SystemExit(1) from None
    mismatches = [
        f"{s.number} line {e.line.line_no} ({e.line.description})" for s, e in checked.mismatched
    ]
    if all_:
        console.print(
            f"{len(keys)} invoices, {checked.lines} lines: {checked.equal} usage lines recomputed"
            f" from their events and equal; {len(mismatches)} disagree"
        )
    for m in mismatches:
        err_console.print(f"disagrees: {m}")
    if check and mismatches:
        raise SystemExit(1)


@app.command()
def schemas(
    directory: Annotated[Path, typer.Argument(help="Folder to write the bundle into.")],
) -> None:
    """Write every schema Railyard writes or reads, self-contained, one file per fingerprint,
    with index.json mapping each fingerprint (hex, bytes 2..10 of a message) to its file."""
    from streams.wire.schemas import published_schemas

    directory.mkdir(parents=True, exist_ok=True)
    index: dict[str, dict[str, str]] = {}
    for published in published_schemas():
        key = published.fingerprint.hex()
        name = f"{published.contract}.{key}.avsc"
        (directory / name).write_text(json.dumps(published.schema, indent=2) + "\n")
        index[key] = {"file": name, "record": published.full_name, "contract": published.contract}
    (directory / "index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    console.print(f"{len(index)} schemas written to {directory} (index.json maps fingerprints)")


@app.command()
def demo(
    events: int = 20_000,
    today: Annotated[
        str,
        typer.Option(
            help="The demo's date, YYYY-MM-DD: five weeks of usage up to the day before, "
            "and last month's periods closed. Default: today (UTC)."
        ),
    ] = "",
    keep_running: Annotated[bool, typer.Option(help="Leave broker, worker and sink up.")] = False,
    delivery: Annotated[
        bool, typer.Option(help="Deliver the invoices to the rails' local sandbox peers.")
    ] = True,
) -> None:
    """The end-to-end demo on the embedded defaults.

    Every run starts from fresh state: it stops what an earlier --keep-running demo left
    running and deletes the broker data, the embedded store and the logs under
    RAILYARD_HOME (.railyard by default).
    """
    from streams.cli.demo import run_demo

    try:
        # The one read of the wall clock: everything in the demo derives from this date.
        day = date.fromisoformat(today) if today else datetime.now(UTC).date()
    except ValueError:
        raise typer.BadParameter(
            f"not a date (YYYY-MM-DD): {today!r}", param_hint="--today"
        ) from None
    run_demo(
        settings(),
        today=day,
        events=events,
        keep_running=keep_running,
        delivery=delivery,
        console=console,
    )


def _catalog_in_force(current: Settings, path: Path | None) -> tuple[Catalog, str]:
    """``path``'s catalog; else the one in force on the ``catalog`` topic when the broker
    answers at once; else ``RAILYARD_CATALOG``'s. Returns it and where it came from."""
    from connectors.files import load_catalog

    if path is not None:
        return load_catalog(path), str(path)
    applied = _applied_catalog(current)
    if applied is not None:
        return applied, f"in force on {current.kafka_bootstrap}"
    return load_catalog(current.catalog), f"RAILYARD_CATALOG={current.catalog}"


def _applied_catalog(current: Settings, timeout: float = 10.0) -> Catalog | None:
    """The catalog in force on the ``catalog`` topic; None when no broker listens on the
    first bootstrap address (checked with a plain TCP connect, so an absent broker costs
    no client retries) or no catalog was applied."""
    import socket

    from connectors.kafka.catalog_feed import CatalogFeed

    host, _, port = current.kafka_bootstrap.split(",")[0].strip().rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=1.0).close()
    except (OSError, ValueError):
        return None
    feed = CatalogFeed(current).start()
    try:
        return feed.wait(timeout)
    except RailyardError:
        return None
    finally:
        feed.stop()


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
    )


def main() -> None:
    try:
        app()
    except RailyardError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise SystemExit(2) from exc
