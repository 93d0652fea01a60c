"""The ``railyard`` command."""

from __future__ import annotations

import json
import logging
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from streams.cli_billing import close_period, credits, simulate, spend
from streams.cli_metering import catalog_app, unattributed, usage
from streams.cli_rails import invoices, rails_app
from streams.cli_stack import stack_app, topics_app
from streams.errors import RailyardError
from streams.settings import Settings

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

    from streams.app import build_worker_app
    from streams.runtime import tune_gc, use_event_loop

    _logging()
    current = settings()
    loop = use_event_loop(current.event_loop)  # before the app makes its loop
    logging.getLogger("railyard.worker").info("event loop: %s", loop)
    faust_app = build_worker_app(current)
    tune_gc()
    faust.Worker(faust_app, loglevel=loglevel, quiet=True).execute_from_commandline()


@app.command()
def sink(loglevel: str = "INFO") -> None:
    """Run the ClickHouse sink connector (and, when embedded, the analyst query endpoint)."""
    from connectors.clickhouse.service import run_sink
    from streams.runtime import tune_gc

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
    from connectors.kafka.producer import UsageProducer, produce_file
    from streams.domain.meters import load_meters
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
    customers: int = 20,
    seed: int = 7,
    days: float = 1.0,
    start: Annotated[str, typer.Option(help="RFC 3339; default: now minus --days")] = "",
    duplicate_rate: float = 0.0,
    invalid_rate: float = 0.0,
    late_rate: float = 0.0,
    unknown_subject_rate: float = 0.0,
) -> None:
    """Write a deterministic synthetic workload (CloudEvents JSONL) from a seed."""
    from streams.domain.workload import GeneratedEvent, WorkloadSpec, iter_events, write_jsonl

    duration = timedelta(days=days)
    begin = (
        datetime.fromisoformat(start).astimezone(UTC)
        if start
        else (datetime.now(UTC) - duration).replace(microsecond=0)
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
            for i, ev in enumerate(iter_events(spec), 1):
                if i % 5000 == 0:
                    progress.update(task, completed=i)
                yield ev

        written = write_jsonl(counted(), out)
        progress.update(task, completed=events)
    console.print(f"wrote {written} events to {out}")


@app.command()
def demo(
    events: int = 20_000,
    keep_running: Annotated[bool, typer.Option(help="Leave broker, worker and sink up.")] = False,
) -> None:
    """The end-to-end demo on the embedded defaults."""
    from streams.demo import run_demo

    run_demo(settings(), events=events, keep_running=keep_running, console=console)


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


if __name__ == "__main__":
    main()
