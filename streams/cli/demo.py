"""``railyard demo``: the whole path on the embedded defaults, narrated.

Starts from fresh state (:mod:`streams.cli.demo_state`), then the local broker, the
stream worker and the sink; generates five weeks of usage up to the day before the
demo's date for the catalog's customers, with duplicates and bad events; publishes
it (plus a few payloads a broken third-party producer might send); waits until
everything has landed; shows what landed and what was dead-lettered, by reason;
parks and then attributes an unknown key; closes last month and checks every
invoice against ``railyard simulate``; delivers them to the rails' sandbox peers.

The demo's date is its clock: :class:`DemoDate` holds the ``--today`` the command
line read once, every instant below derives from it, and the worker runs on a clock
that starts there (``RAILYARD_CLOCK_START``), so any date works, past or future.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from connectors.api.service import port_file as api_port_file
from connectors.clickhouse.analyst import catalog_in_force, query, query_port_file, stored_catalog
from connectors.clickhouse.sql import literal
from connectors.files import load_catalog
from connectors.kafka.catalog_feed import publish_catalog
from connectors.kafka.producer import UsageProducer, produce_lines
from connectors.processes import ManagedProcess, spawn
from streams.cli.demo_doors import open_doors, show_doors
from streams.cli.demo_rails import deliver_invoices, invoices_on_rail_topics
from streams.cli.demo_state import DEMO_PROCESSES, start_fresh
from streams.cli.explain import check_invoices
from streams.domain.catalog import Catalog, SubjectAssignment
from streams.domain.cloudevents import to_json
from streams.domain.errors import RailyardError
from streams.domain.invoice import Invoice
from streams.domain.usage import UsageEvent
from streams.domain.validation import Limits
from streams.domain.workload import WorkloadSpec, catalog_population, generate
from streams.settings import Settings

THIRD_PARTY_GARBAGE: tuple[tuple[bytes, str], ...] = (
    (b"\x00\x00\x00\x00\x07not avro", "Confluent framing, but no registry configured"),
    (b"\xc3\x01" + bytes(8) + b"\x02", "Avro single-object with an unknown schema"),
    (b"\xff\xfe binary noise", "bytes that are no format at all"),
)


DEMO_DAYS = 35
"""The demo's usage spans the five weeks before its date, so last month's periods close."""
SEED = 7


@dataclass(frozen=True)
class DemoDate:
    """The demo's "today": the only clock its logic reads.

    ``now`` is midnight UTC starting ``today``; usage runs from :attr:`first_day` to the
    end of :attr:`last_day` (the day before), and :attr:`month` is the month before.
    """

    today: date

    @property
    def now(self) -> datetime:
        return datetime(self.today.year, self.today.month, self.today.day, tzinfo=UTC)

    @property
    def last_day(self) -> datetime:
        return self.now - timedelta(days=1)

    @property
    def first_day(self) -> datetime:
        return self.now - timedelta(days=DEMO_DAYS)

    @property
    def month(self) -> str:
        """``YYYY-MM`` of last month: the billing periods the demo closes."""
        return (self.today.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")


def run_demo(
    settings: Settings,
    *,
    today: date,
    events: int,
    keep_running: bool = False,
    delivery: bool = True,
    console: Console,
) -> None:
    """The demo dated ``today``; raises :class:`RailyardError` when a step fails.

    Whatever happens, the demo's producer is closed first, then (unless
    ``keep_running``) the worker, the sink and last the broker, so no client is left
    reconnecting to a broker that is gone.
    """
    from connectors.kafka.admin import create_topics
    from connectors.kafka.stack import LocalBroker
    from connectors.kafka.topics import rail_topic_specs

    when = DemoDate(today)
    console.rule(f"[bold]Railyard demo on {today:%Y-%m-%d}: usage -> Kafka -> Faust -> ClickHouse")
    console.print(start_fresh(settings).describe())
    # The worker judges event age against the demo's date, not the machine's.
    settings = settings.with_(clock_start=f"{when.now:%Y-%m-%dT%H:%M:%SZ}")
    broker = LocalBroker(settings)
    broker.install()
    broker.up()
    create_topics(settings)
    catalog = load_catalog(settings.catalog)
    # As `railyard catalog apply` does: every rail's topic exists before its first invoice.
    create_topics(settings, rail_topic_specs(settings, {c.billing.rail for c in catalog.customers}))
    version = publish_catalog(settings, catalog)
    console.print(f"catalog {version} applied from {settings.catalog}")
    console.print(
        f"Kafka broker up at {settings.kafka_bootstrap} (KRaft, data in {settings.kafka_dir})"
    )

    settings, doors = open_doors(settings, when.now)
    procs: list[ManagedProcess] = []
    try:
        procs = [spawn(name, [name], settings) for name in DEMO_PROCESSES]
        console.print(
            f"worker and sink started; the worker's clock starts at {when.now:%Y-%m-%dT%H:%MZ}"
        )
        # The sink owns the embedded store: ask nothing until it answers queries, or this
        # process would open the store first and lock the sink out.
        _wait(procs, query_port_file(settings).exists, "the sink to be ready", timeout=120)
        lines = _run(settings, catalog, when, events, procs, console)
        rails = _show_billing(settings, console, procs, catalog, lines, when)
        if delivery:
            deliver_invoices(settings, console, procs, rails)
        else:
            console.print("delivery to the rails skipped (--no-delivery)")
        _wait(procs, api_port_file(settings).exists, "the API to be ready", timeout=60)
        show_doors(settings, console, doors, when.month, when.now)
    finally:
        if not keep_running:
            for p in procs:  # the worker first: the sink lands what it wrote last
                p.stop()
            broker.down()
            console.print("stopped API, worker, sink and broker (use --keep-running to keep them)")
        else:
            console.print(
                "API, worker, sink and broker keep running (the next railyard demo stops them and "
                'starts afresh); try [bold]railyard sql "SELECT * FROM usage_events LIMIT 5"'
            )


def _run(
    settings: Settings,
    catalog: Catalog,
    when: DemoDate,
    events: int,
    procs: list[ManagedProcess],
    console: Console,
) -> list[str]:
    """Generate, publish and land the usage; show it, the parking and the metering.

    Returns every line published, as ``railyard simulate`` reads them."""
    first, day = when.first_day, when.last_day
    # The catalog's own customers and subjects, so every event bills to one of them.
    population = catalog_population(catalog, SEED, first, when.now)
    spec = WorkloadSpec(
        seed=SEED,
        customers=len(population.customers),
        events=events,
        start=first,
        duration=when.now - first,
        duplicate_rate=0.04,
        invalid_rate=0.02,
    )
    workload = generate(spec, population)
    console.print(
        f"generated {events} CloudEvents for the catalog's {spec.customers} customers from "
        f"{first:%Y-%m-%d} to {day:%Y-%m-%d}: {spec.duplicates} re-sends, "
        f"{spec.invalid} invalid lines"
    )
    limits = Limits(settings.max_event_bytes, settings.max_event_age, settings.max_clock_skew)
    producer = UsageProducer(settings)
    try:
        summary = produce_lines(
            (g.line for g in workload.events),
            producer,
            limits=limits,
            meters=catalog.meter_index,
            now=lambda: when.now,
            passthrough_invalid=True,
        )
        for payload, _why in THIRD_PARTY_GARBAGE:
            producer.send_raw(payload, b"third-party")
        producer.send(_new_key_event(day))  # a key the catalog does not know yet: parked
    finally:
        producer.close()  # delivered, and no client left to outlive the broker
    console.print(
        f"published {summary.sent} valid events; the producer flagged {len(summary.rejected)} "
        f"lines and passed them through, plus {len(THIRD_PARTY_GARBAGE)} garbage payloads "
        "from a 'third-party producer', so the stream must dead-letter them"
    )

    unique_valid = len({g.event["id"] for g in workload.events if g.valid and g.event}) + 1
    expected_dead = len(summary.rejected) + len(THIRD_PARTY_GARBAGE)
    _wait_for_landing(settings, unique_valid, expected_dead, procs, console)
    _show_results(settings, console, Counter(str(r.reason) for _, r in summary.rejected))
    _show_parking(settings, console, procs, catalog, first)
    _show_metering(settings, console)
    return [g.line for g in workload.events] + [to_json(_new_key_event(day))]


def _count(settings: Settings, sql: str) -> int:
    return int(query(settings, sql).rows[0][0])


def _wait_for_landing(
    settings: Settings, events: int, dead: int, procs: list[ManagedProcess], console: Console
) -> None:
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        landed = progress.add_task("events in ClickHouse", total=events)
        dlq = progress.add_task("dead letters", total=dead)

        def done() -> bool:
            n = _count(settings, "SELECT count() FROM usage_events")
            d = _count(settings, "SELECT count() FROM dead_letters")
            progress.update(landed, completed=n)
            progress.update(dlq, completed=d)
            return n >= events and d >= dead

        _wait(procs, done, "every event to land", timeout=300)


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


NEW_KEY = "key_demo_new_teammate"
NEW_KEY_OWNER = "nakatomi-io"


def _new_key_event(day: datetime) -> UsageEvent:
    return UsageEvent(
        id="demo-new-key-0001",
        source="llm-gateway/eu-west-1",
        type="ai.tokens",
        subject=NEW_KEY,
        time=day + timedelta(hours=12),
        values={"tokens": Decimal(1200)},
        dimensions={"model": "gpt-4o", "direction": "input"},
    )


def _show_parking(
    settings: Settings,
    console: Console,
    procs: list[ManagedProcess],
    catalog: Catalog,
    since: datetime,
) -> None:
    """The unknown key's event is parked; a catalog change attributes it."""
    console.rule("[bold]Attribution: a key no customer owns yet")
    parked_count = "SELECT count() FROM unattributed_usage"
    _wait(procs, lambda: _count(settings, parked_count) >= 1, "the new key's event to be parked")
    parked = query(settings, "SELECT subject, type, events, parked_since FROM unattributed_usage")
    table = Table("subject", "event type", "events", "parked since", title="railyard unattributed")
    for row in parked.rows:
        table.add_row(*(str(v) for v in row))
    console.print(table)
    owner = NEW_KEY_OWNER if catalog.customer(NEW_KEY_OWNER) else catalog.customers[0].key
    # The key is the owner's from the demo's first day on, as an edit of the YAML would say.
    claimed = SubjectAssignment(NEW_KEY, owner, since)
    version = publish_catalog(
        settings, replace(catalog, assignments=(*catalog.assignments, claimed))
    )
    console.print(f"applied catalog {version}: {NEW_KEY} now belongs to {owner}")
    _wait(procs, lambda: _count(settings, parked_count) == 0, "the parked event to be attributed")
    row = query(
        settings,
        f"SELECT customer, catalog_version FROM usage_attributed WHERE subject = '{NEW_KEY}'",
    ).rows
    console.print(f"the parked event is now billed to {row[0][0]} (catalog {row[0][1]})")


def _show_metering(settings: Settings, console: Console) -> None:
    console.rule("[bold]Metering: usage per customer, meter and dimensions")
    result = query(
        settings,
        """
        SELECT customer, meter, toString(dimensions) AS dims,
               multiIf(any(aggregation) IN ('SUM', 'COUNT'), toString(sum(value)),
                       toString(max(value))) AS quantity,
               sum(events) AS events, count() AS windows
        FROM usage_windows GROUP BY customer, meter, dims
        ORDER BY customer, meter, events DESC LIMIT 1 BY customer, meter LIMIT 24
        """,
    )
    table = Table(title="Biggest dimension per customer and meter (hourly windows, event time)")
    for col in ("customer", "meter", "dimensions", "quantity", "events", "windows"):
        table.add_column(
            col, justify="right" if col in ("quantity", "events", "windows") else "left"
        )
    for row in result.rows:
        table.add_row(*(str(v) for v in row))
    console.print(table)
    counts = dict(query(settings, "SELECT what, records FROM pipeline_counts").rows)
    console.print(
        "pipeline: "
        + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        + "  (late = beyond the lateness bound: billed as adjustments, never dropped)"
    )


def _show_billing(
    settings: Settings,
    console: Console,
    procs: list[ManagedProcess],
    catalog: Catalog,
    lines: list[str],
    when: DemoDate,
) -> set[str]:
    """Close last month, show one invoice per customer on its rail topic, check it against
    ``railyard simulate`` on the very same lines. Returns the rails the invoices went to."""
    from connectors.kafka.billing_commands import request_close
    from streams.cli.billing import invoice_table, summary_table
    from streams.domain.rating.simulate import simulate

    console.rule("[bold]Rating and invoicing: last month, one invoice per customer and rail")
    month = when.month
    current = catalog_in_force(settings)
    if current is None:
        raise RailyardError("the sink has landed no catalog: nothing to price the lines by")
    limits = Limits(settings.max_event_bytes, settings.max_event_age, settings.max_clock_skew)
    # as_of is the demo's "now" (4th positional: the parameter's name is changing).
    expected = simulate(current, lines, month, when.now, limits=limits).invoices
    console.print(
        f"railyard simulate prices the same {len(lines)} lines in batch: {len(expected)} invoices"
        f" for periods starting in {month}; now closing {month} in the stream"
    )
    request_close(settings, month)
    rails = {c.billing.rail for c in catalog.customers} | {i.rail for i in expected}

    def issued() -> dict[str, Invoice]:
        found = invoices_on_rail_topics(settings, rails)
        return {i.id: i for batch in found.values() for i in batch}

    want = {i.id: i for i in expected}
    _wait(procs, lambda: want.keys() <= issued().keys(), "an invoice per customer", timeout=120)
    everything = issued()
    # Everything the stream issued for periods starting in the month, simulate's or not.
    streamed = {k: v for k, v in everything.items() if k in want or _starts_in(v, month)}
    if streamed:
        console.print(invoice_table(max(streamed.values(), key=lambda i: len(i.lines))))
        console.print(
            summary_table(streamed.values(), title=f"Invoices on invoices.<rail>, {month}")
        )
    earlier = sorted(
        f"{i.number} ({i.customer})" for k, i in everything.items() if k not in streamed
    )
    if earlier:
        console.print(
            f"also closed by event time (periods starting before {month}): " + ", ".join(earlier)
        )
    # Each invoice is checked against simulate under the catalog it was issued with: periods
    # that event time closed before the demo's catalog change were priced by the first one.
    differ: list[str] = []
    for version in sorted({i.catalog_version for i in streamed.values()}):
        rated_under = stored_catalog(settings, version)
        if rated_under is None:
            raise RailyardError(f"catalog {version} is not in the store")
        oracle = {
            i.id: i for i in simulate(rated_under, lines, month, when.now, limits=limits).invoices
        }
        differ += [
            f"{i.number} ({i.total} vs {oracle[k].total if k in oracle else 'none'})"
            for k, i in streamed.items()
            if i.catalog_version == version and oracle.get(k) != i
        ]
    verdict = "identical, to the cent" if not differ else "DIFFERENT: " + ", ".join(differ)
    console.print(f"stream vs railyard simulate: {verdict} ({len(streamed)} invoices)")
    if differ:
        raise RailyardError("the stream's invoices differ from railyard simulate's")
    _explain_all(settings, console, procs, everything)
    return {i.rail for i in streamed.values()}


def _explain_all(
    settings: Settings, console: Console, procs: list[ManagedProcess], issued: dict[str, Invoice]
) -> None:
    """``railyard explain`` of the largest invoice, and every usage line of every invoice
    recomputed from its stored events: the demo fails if one disagrees."""
    ids = ", ".join(map(literal, issued))
    landed = f"SELECT count() FROM invoices WHERE id IN ({ids})"
    _wait(procs, lambda: query(settings, landed).rows[0][0] >= len(issued), "invoices landed")
    largest = max(issued.values(), key=lambda i: (i.total, i.number))
    header = f"railyard explain {largest.number} (the largest invoice):"
    numbers = {i.id: i.number for i in issued.values()}
    checked = check_invoices(
        settings, sorted(issued, key=numbers.__getitem__), console, {largest.id: header}
    )
    lines = checked.usage_lines
    mismatches = [f"{s.number} line {e.line.line_no}" for s, e in checked.mismatched]
    verdict = "every one equal" if not mismatches else "DIFFERENT: " + ", ".join(mismatches)
    console.print(f"usage lines recomputed from their stored events: {verdict} ({lines} lines)")
    if mismatches:
        raise RailyardError("invoice lines disagree with the events behind them")


def _starts_in(invoice: Invoice, month: str) -> bool:
    return f"{invoice.period_start:%Y-%m}" == month


def _wait(
    procs: list[ManagedProcess], ready: Callable[[], bool], what: str, timeout: float = 120
) -> None:
    """Poll ``ready()`` until true; fail fast if a process dies, or after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in procs:
            if not p.alive:
                raise RailyardError(f"{p.name} exited:\n{p.log_tail()}")
        try:
            if ready():
                return
        except RailyardError:
            pass  # the sink is still starting
        time.sleep(0.5)
    raise RailyardError(f"timed out after {timeout:.0f}s waiting for {what}; see the logs")
