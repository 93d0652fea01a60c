"""Prometheus metrics: every metric Railyard exports, declared once, and the exporter.

Each long-running process (``railyard worker``, ``railyard sink``, ``railyard rails run``)
calls :func:`serve` once at start-up: an HTTP endpoint answers ``GET /metrics`` on
``RAILYARD_METRICS_PORT`` (0, the default: a free port the system picks; -1: no endpoint)
and the port is written to ``<run dir>/<process>.metrics-port``, as the sink does for its
query port, so a scraper or a test can find an ephemeral one. ``docs/deploy.md`` lists
every metric, its labels and what to alert on.

Counters count what this process did since it started: a batch replayed after a crash is
counted again by the process that replays it (its outputs are not: the stages make a
replay idempotent), so alert on rates, never on totals.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path

from confluent_kafka import Consumer
from prometheus_client import Counter, Enum, Gauge, Histogram, start_http_server

from streams.settings import Settings

log = logging.getLogger("railyard.metrics")

# -- ingest (streams/agents/ingest.py, attribute.py) ---------------------------------

EVENTS_RECEIVED = Counter(
    "railyard_events_received",
    "Usage events screened by ingest: accepted + de-duplicated + dead-lettered.",
)
EVENTS_ACCEPTED = Counter(
    "railyard_events_accepted", "Usage events accepted (valid, first time seen)."
)
EVENTS_DEDUPLICATED = Counter(
    "railyard_events_deduplicated",
    "Usage events dropped as duplicates of one already accepted (same source and id).",
)
EVENTS_PARKED = Counter(
    "railyard_events_parked",
    "Accepted events no customer claims yet, parked on usage.unattributed.",
)
EVENTS_DEAD_LETTERED = Counter(
    "railyard_events_dead_lettered",
    "Records sent to usage.dlq, by the stage that refused them and the reason.",
    ["stage", "reason"],
)

# -- the broker (connectors/kafka/client_logs.py) ----------------------------------------

BROKER_CONNECTION_FAILURES = Counter(
    "railyard_broker_connection_failures",
    "Failed connections to a Kafka broker reported by this process's clients, each retry "
    "counted (the log says the first one, then once a minute).",
)

# -- progress of each stage -----------------------------------------------------------

CONSUMER_LAG = Gauge(
    "railyard_consumer_lag_messages",
    "Messages between the partition's high watermark and the offset this process consumed to.",
    ["topic", "partition"],
)
WATERMARK = Gauge(
    "railyard_watermark_timestamp_seconds",
    "Event-time watermark of a stage's partition (Unix seconds): the window stage's, and "
    "for the rate stage the billing book's, the newest usage an invoice can see.",
    ["stage", "partition"],
)
FRESHNESS = Gauge(
    "railyard_freshness_seconds",
    "How old the stage's view is: the process clock at scrape time minus the watermark.",
    ["stage", "partition"],
)

# -- the sink (connectors/clickhouse/sink.py) -------------------------------------------

ROWS_LANDED = Counter("railyard_rows_landed", "Rows inserted into ClickHouse.", ["table"])
INSERT_SECONDS = Histogram(
    "railyard_insert_duration_seconds",
    "Time one batch insert into a table took.",
    ["table"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

# -- invoices (streams/agents/rate.py, connectors/rails/runner.py) ----------------------

INVOICES_ISSUED = Counter(
    "railyard_invoices_issued", "Invoices the rate stage issued, by rail.", ["rail"]
)
INVOICES_DELIVERED = Counter("railyard_invoices_delivered", "Invoices the rail accepted.", ["rail"])
INVOICES_RETRIED = Counter(
    "railyard_invoices_retried",
    "Failed delivery attempts scheduled for a retry (transient errors).",
    ["rail"],
)
INVOICES_DEAD_LETTERED = Counter(
    "railyard_invoices_dead_lettered",
    "Invoices sent to invoices.dlq: rejected, retries exhausted or undecodable.",
    ["rail", "reason"],
)
INVOICE_PAYMENTS = Counter(
    "railyard_invoice_payments",
    "Payment steps a rail reported and Railyard recorded (paid, payment_failed, refunded, "
    "disputed, voided), by rail; a rail's redelivery of the same event is not counted again.",
    ["rail", "status"],
)
CIRCUIT_STATE = Enum(
    "railyard_rail_circuit",
    "The rail's circuit breaker: closed, open (no attempts) or half-open (one probe).",
    ["rail"],
    states=["closed", "open", "half-open"],
)


class StageProgress:
    """A stage's watermark per partition, and its freshness computed at scrape time from
    the process clock (``RAILYARD_CLOCK_START`` included), so it grows while nothing moves."""

    def __init__(self, stage: str, clock: Callable[[], datetime]) -> None:
        self.stage = stage
        self.clock = clock
        self.marks: dict[int, float] = {}

    def advance(self, partition: int, watermark: datetime) -> None:
        mark = watermark.timestamp()
        if mark <= 0:  # no event time seen yet: nothing to be fresh about
            return
        if partition not in self.marks:
            FRESHNESS.labels(self.stage, str(partition)).set_function(
                lambda: self.clock().timestamp() - self.marks.get(partition, mark)
            )
        self.marks[partition] = mark
        WATERMARK.labels(self.stage, str(partition)).set(mark)

    def forget(self, partition: int) -> None:
        """Drop a revoked partition's series: its new owner reports it."""
        if self.marks.pop(partition, None) is not None:
            WATERMARK.remove(self.stage, str(partition))
            FRESHNESS.remove(self.stage, str(partition))


def port_file(settings: Settings, process: str) -> Path:
    return settings.run_dir / f"{process}.metrics-port"


def serve(settings: Settings, process: str) -> int | None:
    """Start the exporter (a daemon thread) for ``process``; the port it listens on, or
    None when ``RAILYARD_METRICS_PORT`` is -1. Call once per process."""
    if settings.metrics_port < 0:
        return None
    server, _ = start_http_server(settings.metrics_port, addr=settings.metrics_host)
    port = int(server.server_port)
    path = port_file(settings, process)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(str(port))
    log.info("metrics on http://%s:%d/metrics", settings.metrics_host, port)
    return port


def export_ingest_counts(counts: Mapping[str, int], exported: dict[str, int]) -> None:
    """Add to the ingest counters what the stage's running totals gained since the last
    call (``accepted``, ``duplicates``, ``rejected.<reason>``; ``exported`` remembers).

    A rejection is one record: an event, or a whole message no event could be read from.
    """
    for key, total in counts.items():
        delta = total - exported.get(key, 0)
        if delta <= 0 or key == "messages":
            continue
        exported[key] = total
        if key == "accepted":
            EVENTS_ACCEPTED.inc(delta)
        elif key == "duplicates":
            EVENTS_DEDUPLICATED.inc(delta)
        elif key.startswith("rejected."):
            EVENTS_DEAD_LETTERED.labels("ingest", key.removeprefix("rejected.")).inc(delta)
        else:
            continue
        EVENTS_RECEIVED.inc(delta)


def report_consumer_lag(
    consumer: Consumer,
    committed: Mapping[tuple[str, int], int],
    reported: set[tuple[str, str]],
) -> None:
    """Set the lag of each partition ``consumer`` is assigned: its high watermark as of the
    last fetch (no broker round trip) minus the offset committed, or before the first
    commit, the offset consumed to. Call it from the consumer's own thread.

    ``reported`` (kept by the caller, one per consumer) holds the series set last time:
    those of partitions revoked since are removed, their new owner reports them.
    """
    assigned = consumer.assignment()
    now = {(tp.topic, str(tp.partition)) for tp in assigned}
    for gone in reported - now:
        CONSUMER_LAG.remove(*gone)
    reported.clear()
    for tp in assigned:
        _, high = consumer.get_watermark_offsets(tp, cached=True)
        done = committed.get((tp.topic, tp.partition))
        if done is None:
            done = consumer.position([tp])[0].offset
        if high >= 0 and done >= 0:
            CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(high - done)
            reported.add((tp.topic, str(tp.partition)))
