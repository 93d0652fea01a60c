"""``railyard demo``: the whole path on the embedded defaults, narrated.

Starts the local broker, the stream worker and the sink; generates a day of usage
with duplicates and bad events; publishes it (plus a few payloads a broken
third-party producer might send); waits until everything has landed; then shows
what landed per subject and event type and what was dead-lettered, by reason.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from connectors.clickhouse.analyst import query
from connectors.kafka.catalog_feed import publish_catalog
from connectors.kafka.producer import UsageProducer, produce_lines
from connectors.processes import ManagedProcess, spawn
from streams.domain.catalog import load_catalog
from streams.domain.meters import load_meters
from streams.domain.validation import Limits
from streams.domain.workload import WorkloadSpec, generate
from streams.errors import RailyardError
from streams.settings import Settings

THIRD_PARTY_GARBAGE: tuple[tuple[bytes, str], ...] = (
    (b"\x00\x00\x00\x00\x07not avro", "Confluent framing, but no registry configured"),
    (b"\xc3\x01" + bytes(8) + b"\x02", "Avro single-object with an unknown schema"),
    (b"\xff\xfe binary noise", "bytes that are no format at all"),
)


def run_demo(settings: Settings, *, events: int, keep_running: bool, console: Console) -> None:
    from connectors.kafka.admin import create_topics
    from connectors.kafka.stack import LocalBroker

    console.rule("[bold]Railyard demo: usage -> Kafka -> Faust -> ClickHouse")
    broker = LocalBroker(settings)
    broker.install()
    broker.up()
    create_topics(settings)
    version = publish_catalog(settings, load_catalog(settings.catalog))
    console.print(f"catalog {version} applied from {settings.catalog}")
    console.print(
        f"Kafka broker up at {settings.kafka_bootstrap} (KRaft, data in {settings.kafka_dir})"
    )

    procs = [spawn("sink", ["sink"], settings), spawn("worker", ["worker"], settings)]
    try:
        _run(settings, events, procs, console)
    finally:
        if not keep_running:
            for p in procs:
                p.stop()
            broker.down()
            console.print("stopped worker, sink and broker (use --keep-running to keep them)")
        else:
            console.print(
                "worker, sink and broker keep running; try "
                '[bold]railyard sql "SELECT * FROM usage_events LIMIT 5"[/bold]'
            )


def _run(settings: Settings, events: int, procs: list[ManagedProcess], console: Console) -> None:
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    spec = WorkloadSpec(
        seed=7, customers=12, events=events, start=day, duration=timedelta(days=1),
        duplicate_rate=0.04, invalid_rate=0.02,
    )  # fmt: skip
    workload = generate(spec)
    console.print(
        f"generated {events} CloudEvents for {spec.customers} customers on {day:%Y-%m-%d}: "
        f"{spec.duplicates} re-sends, {spec.invalid} invalid lines"
    )
    meters = load_meters(str(settings.catalog))
    limits = Limits(settings.max_event_bytes, settings.max_event_age, settings.max_clock_skew)
    producer = UsageProducer(settings)
    summary = produce_lines(
        (g.line for g in workload.events),
        producer,
        limits=limits,
        meters=meters,
        passthrough_invalid=True,
    )
    raw = UsageProducer(settings)
    for payload, _why in THIRD_PARTY_GARBAGE:
        raw.send_raw(payload, b"third-party")
    raw.flush()
    console.print(
        f"published {summary.sent} valid events; the producer flagged {len(summary.rejected)} "
        f"lines and passed them through, plus {len(THIRD_PARTY_GARBAGE)} garbage payloads "
        "from a 'third-party producer', so the stream must dead-letter them"
    )

    unique_valid = len({g.event["id"] for g in workload.events if g.valid and g.event})
    expected_dead = len(summary.rejected) + len(THIRD_PARTY_GARBAGE)
    _wait_for_landing(settings, unique_valid, expected_dead, procs, console)
    _show_results(settings, console, Counter(str(r.reason) for _, r in summary.rejected))


def _count(settings: Settings, sql: str) -> int:
    return int(query(settings, sql).rows[0][0])


def _wait_for_landing(
    settings: Settings, events: int, dead: int, procs: list[ManagedProcess], console: Console
) -> None:
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=console,
    ) as progress:  # fmt: skip
        landed = progress.add_task("events in ClickHouse", total=events)
        dlq = progress.add_task("dead letters", total=dead)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            for p in procs:
                if not p.alive:
                    raise RailyardError(f"{p.name} exited:\n{p.log_tail()}")
            try:
                n = _count(settings, "SELECT count() FROM usage_events")
                d = _count(settings, "SELECT count() FROM dead_letters")
            except RailyardError:
                time.sleep(0.5)  # sink still starting
                continue
            progress.update(landed, completed=n)
            progress.update(dlq, completed=d)
            if n >= events and d >= dead:
                return
            time.sleep(0.5)
    raise RailyardError("events did not land within 5 minutes; see .railyard/logs/")


def _show_results(settings: Settings, console: Console, flagged: Counter[str]) -> None:
    by_subject = query(
        settings,
        """
        SELECT subject, type, count() AS events,
               toString(sum(arraySum(mapValues(values)))) AS quantity
        FROM usage_events GROUP BY subject, type ORDER BY events DESC, subject LIMIT 15
        """,
    )
    table = Table(title="What landed, per subject and event type (top 15)")
    for col in ("subject", "event type", "events", "quantity"):
        table.add_column(col, justify="right" if col in ("events", "quantity") else "left")
    for row in by_subject.rows:
        table.add_row(*(str(v) for v in row))
    console.print(table)

    totals = query(
        settings,
        "SELECT type, count(), uniqExact(subject) FROM usage_events GROUP BY type ORDER BY type",
    )
    t2 = Table("event type", "events", "subjects", title="Totals per event type")
    for row in totals.rows:
        t2.add_row(*(str(v) for v in row))
    console.print(t2)

    dead = query(settings, "SELECT reason, records FROM dead_letters_by_reason ORDER BY reason")
    t3 = Table("reason", "dead letters", "flagged by producer", title="usage.dlq by reason")
    for reason, records in dead.rows:
        t3.add_row(str(reason), str(records), str(flagged.get(str(reason), 0)))
    console.print(t3)
    raw_rows = _count(settings, "SELECT count() FROM usage_events_raw")
    console.print(
        f"usage_events holds each accepted event once ({raw_rows} physical rows before merges); "
        "duplicates were dropped by the stream"
    )
