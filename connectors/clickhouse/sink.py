"""The ClickHouse sink connector: the only writer of the store.

Consumes the stream's output topics with confluent-kafka and inserts them in
batches. Lifecycle per batch: ``add`` buffers rows, ``flush`` inserts every buffer
and then commits the consumed offsets synchronously. If the insert fails nothing
is committed and the batch is read again; tables are ReplacingMergeTree on each
row's natural key, so a batch inserted twice is still counted once.

With the embedded engine this process owns the data directory, so it also serves
analysts' read-only queries (see :mod:`connectors.clickhouse.query_server`).
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from connectors.kafka import topics
from connectors.kafka.client_logs import quiet_client_config
from connectors.kafka.consumed import position_of, value_of
from connectors.metrics import INSERT_SECONDS, ROWS_LANDED, report_consumer_lag
from streams.settings import Settings
from streams.wire.codec import (
    CURRENT_VERSION,
    EVENT_VERSIONS,
    HEADER_SIZE,
    UsageCodec,
    decode_dead_letter,
)
from streams.wire.container import Landed, container, wrap_single
from streams.wire.varint import read_long, write_long

log = logging.getLogger("railyard.sink")


class RowWriter(Protocol):
    """Turns one Kafka message into rows of one table."""

    @property
    def table(self) -> str: ...

    @property
    def columns(self) -> Sequence[str]:
        """In the order of each row's values."""
        ...

    def rows(self, msg: Message) -> Iterable[Sequence[Any]]: ...


@runtime_checkable
class AvroLanding(RowWriter, Protocol):
    """A writer whose messages the embedded engine reads with its own Avro reader.

    ``record`` returns the message as one record of ``schema`` (no decoding: the body
    as received, perhaps behind a few fields the sink adds), or None for a message
    not in the expected layout, which then goes through ``rows`` like any other.
    """

    schema: dict[str, Any]

    def record(self, msg: Message) -> Landed | None: ...

    def insert_sql(self, source: str) -> str:
        """The INSERT that lands the records of ``source`` (a table function)."""
        ...


class UsageEventsWriter:
    """Accepted events; rows are kept with the ``usage.accepted`` record they came in."""

    table = "usage_events_raw"
    columns = (
        "id",
        "source",
        "type",
        "subject",
        "time",
        "values",
        "dimensions",
        "dataschema",
        "specversion",
        "kafka_partition",
        "kafka_offset",
    )

    def __init__(self) -> None:
        self.codec = UsageCodec()

    def rows(self, msg: Message) -> Iterable[Sequence[Any]]:
        _, partition, offset = position_of(msg)
        for r in self.codec.decode_records(value_of(msg)):
            yield (
                r["id"],
                r["source"],
                r["type"],
                r["subject"],
                r["time"],
                r["values"],
                r["dimensions"],
                r["dataschema"],
                r["specversion"],
                partition,
                offset,
            )

    schema: dict[str, Any] = {
        "type": "record",
        "name": "LandedUsage",
        "namespace": "dev.railyard.sink",
        "fields": [
            {"name": "kafka_partition", "type": "int"},
            {"name": "kafka_offset", "type": "long"},
            {"name": "events", "type": {"type": "array", "items": EVENT_VERSIONS[CURRENT_VERSION]}},
        ],
    }

    def record(self, msg: Message) -> Landed | None:
        payload = msg.value()
        if not payload:
            return None
        is_batch = self.codec.current_layout(payload)
        if is_batch is None:
            return None
        _, partition, offset = position_of(msg)
        body = memoryview(payload)[HEADER_SIZE:]
        position = write_long(partition) + write_long(offset)
        if is_batch:  # a UsageBatch is its events array: the record's last field as is
            return (position, body), abs(read_long(body, 0)[0])
        return (position, wrap_single(body)), 1

    def insert_sql(self, source: str) -> str:
        fields = ", ".join(f"e.{c}" for c in self.columns[:-2])
        return (
            f"INSERT INTO {self.table} ({', '.join(self.columns)}) "
            f"SELECT {fields}, kafka_partition, kafka_offset "
            f"FROM (SELECT kafka_partition, kafka_offset, events FROM {source}) "
            "ARRAY JOIN events AS e"
        )


class DeadLettersWriter:
    table = "dead_letters_raw"
    columns = (
        "reason",
        "detail",
        "stage",
        "topic",
        "kafka_partition",
        "kafka_offset",
        "batch_index",
        "event_id",
        "subject",
        "original",
        "rejected_at",
    )

    def rows(self, msg: Message) -> Iterable[Sequence[Any]]:
        d = decode_dead_letter(value_of(msg))
        yield (
            d["reason"],
            d["detail"],
            d["stage"],
            d["topic"],
            d["partition"],
            d["offset"],
            d["index"],
            d["event_id"],
            d["subject"],
            d["original"],
            d["rejected_at"],
        )


def default_writers(settings: Settings) -> dict[str, tuple[RowWriter, ...]]:
    """Topic -> writers (one per table) for every topic the sink lands."""
    from connectors.clickhouse import billing_writers as b
    from connectors.clickhouse import delivery as d
    from connectors.clickhouse import metering_writers as m

    def t(name: str) -> str:
        return topics.topic_name(settings, name)

    return {
        t(topics.USAGE_ACCEPTED): (UsageEventsWriter(),),
        t(topics.USAGE_DLQ): (DeadLettersWriter(),),
        t(topics.CATALOG): (m.CatalogWriter(), m.CatalogApplicationsWriter()),
        t(topics.USAGE_ATTRIBUTED): (m.AttributedWriter(),),
        t(topics.USAGE_UNATTRIBUTED): (m.UnattributedWriter(),),
        t(topics.USAGE_WINDOWS): (m.WindowsWriter(),),
        t(topics.USAGE_LATE): (m.LateWriter(),),
        t(topics.INVOICES): (b.InvoicesWriter(), b.InvoiceLinesWriter()),
        t(topics.BILLING_SPEND): (b.SpendWriter(), b.CreditBalancesWriter()),
        t(topics.CREDIT_EVENTS): (b.CreditEventsWriter(),),
        t(topics.INVOICES_STATUS): (d.InvoiceStatusWriter(),),
        t(topics.INVOICES_DLQ): (d.InvoiceDeadLettersWriter(),),
    }


@dataclass
class _Buffer:
    writer: RowWriter
    columns: list[list[Any]] = field(default_factory=list)
    rows: int = 0

    def __post_init__(self) -> None:
        self.columns = [[] for _ in self.writer.columns]

    def add(self, row: Sequence[Any]) -> None:
        for col, value in zip(self.columns, row, strict=True):
            col.append(value)
        self.rows += 1


@dataclass
class _Landing:
    """Messages bound for one table through the engine's Avro reader."""

    writer: AvroLanding
    parts: list[bytes | memoryview] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    rows: int = 0

    def add(self, msg: Message, landed: Landed) -> None:
        self.parts.extend(landed[0])
        self.messages.append(msg)
        self.rows += landed[1]


@dataclass
class SinkStats:
    rows: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    undecodable: int = 0
    last_flush_at: float = 0.0


class ClickHouseSink:
    """Batches messages from its topics into ClickHouse; commits only after inserts."""

    def __init__(
        self,
        settings: Settings,
        client: Any,
        writers: dict[str, tuple[RowWriter, ...]] | None = None,
        *,
        group_id: str | None = None,
        max_rows: int = 50_000,
        linger_s: float | None = None,
        derived_linger_s: float | None = None,
        lock: threading.Lock | None = None,
        on_flush: Callable[[SinkStats], None] | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.writers = writers or default_writers(settings)
        self.max_rows = max_rows
        fresh = {topics.topic_name(settings, t) for t in (topics.USAGE_ACCEPTED, topics.USAGE_DLQ)}
        fresh_s = settings.sink_linger.total_seconds() if linger_s is None else linger_s
        derived_s = (
            settings.sink_derived_linger.total_seconds()
            if derived_linger_s is None
            else derived_linger_s
        )
        self._linger = {t: fresh_s if t in fresh else derived_s for t in self.writers}
        """How long a topic's rows may wait: every insert costs the engine a new part
        (~10-25 ms of CPU, whatever its size), so only the events analysts query first
        go in every ``linger_s`` (``RAILYARD_SINK_LINGER``); attribution, windows and billing
        rows wait ``derived_linger_s`` (``RAILYARD_SINK_DERIVED_LINGER``)."""
        self._tables = {
            t: {w.table for w in ws} | {DeadLettersWriter.table} for t, ws in self.writers.items()
        }
        self._since: dict[str, float] = {}
        self.lock = lock or threading.Lock()
        self.on_flush = on_flush
        self.stats = SinkStats()
        self._buffers = {w.table: _Buffer(w) for ws in self.writers.values() for w in ws}
        self._landings: dict[str, _Landing] = {}
        if settings.embedded_clickhouse:  # the engine reads files on this machine
            self._landings = {
                w.table: _Landing(w)
                for ws in self.writers.values()
                for w in ws
                if isinstance(w, AvroLanding)
            }
        self._offsets: dict[tuple[str, int], int] = {}
        self._committed: dict[tuple[str, int], int] = {}
        self._lag_at = 0.0
        self._lag_reported: set[tuple[str, str]] = set()
        self._spool = (settings.run_dir / "sink-spool").resolve()
        self._spool.mkdir(parents=True, exist_ok=True)
        self._stop = threading.Event()
        self._consumer = Consumer(
            {
                **quiet_client_config(),
                "bootstrap.servers": settings.kafka_bootstrap,
                "group.id": group_id or f"{settings.topic_prefix}railyard-sink",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                "fetch.min.bytes": 1,
                "session.timeout.ms": 10_000,
                "heartbeat.interval.ms": 2_000,
                "queued.max.messages.kbytes": 262144,
            }
        )

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        self._consumer.subscribe(list(self.writers), on_revoke=self._on_revoke)
        try:
            while not self._stop.is_set():
                for msg in self._consumer.consume(num_messages=5000, timeout=0.05):
                    self._add(msg)
                pending = sum(b.rows for b in self._buffers.values()) + sum(
                    b.rows for b in self._landings.values()
                )
                now = time.monotonic()
                due = [t for t, since in self._since.items() if now - since >= self._linger[t]]
                if pending >= self.max_rows:
                    self.flush()
                elif due:
                    self.flush(due)
                if now - self._lag_at >= 1.0:
                    self._lag_at = now
                    report_consumer_lag(self._consumer, self._committed, self._lag_reported)
            self.flush()
        finally:
            self._consumer.close()

    def _add(self, msg: Message) -> None:
        err = msg.error()
        if err is not None:
            if err.code() != KafkaError._PARTITION_EOF:
                log.warning("consume error: %s", err)
            return
        topic, partition, offset = position_of(msg)
        for writer in self.writers[topic]:
            landing = self._landings.get(writer.table)
            if landing is not None:
                landed = landing.writer.record(msg)
                if landed is not None:
                    landing.add(msg, landed)
                    continue
            self._add_rows(writer, msg)
        self._offsets[(topic, partition)] = offset + 1
        self._since.setdefault(topic, time.monotonic())

    def _add_rows(self, writer: RowWriter, msg: Message) -> None:
        buffer = self._buffers[writer.table]
        try:
            rows = list(writer.rows(msg))
        except Exception as exc:  # a bug upstream, never silently dropped
            self.stats.undecodable += 1
            self._dead_letter(msg, exc)
            return
        for row in rows:
            buffer.add(row)

    def _dead_letter(self, msg: Message, exc: Exception) -> None:
        from datetime import UTC, datetime

        dlq = self._buffers.get(DeadLettersWriter.table)
        log.error("cannot decode %s[%d]@%d: %r", msg.topic(), msg.partition(), msg.offset(), exc)
        if dlq is None:
            raise exc
        dlq.add(
            (
                "malformed_payload",
                f"sink could not decode: {exc!r:.200}",
                "sink",
                msg.topic(),
                msg.partition(),
                msg.offset(),
                0,
                None,
                None,
                msg.value() or b"",
                datetime.now(UTC),
            )
        )

    def _land(self, landing: _Landing) -> None:
        """Insert through the engine's Avro reader; a batch it refuses goes row by row.

        Only a body that is not what its fingerprint says can be refused; decoding it
        in Python then dead-letters exactly the messages at fault.
        """
        writer = landing.writer
        fd, path = tempfile.mkstemp(prefix=f"{writer.table}.", suffix=".avro", dir=self._spool)
        try:
            with os.fdopen(fd, "wb") as f:
                f.writelines(container(writer.schema, len(landing.messages), landing.parts))
            quoted = path.replace("\\", "\\\\").replace("'", "\\'")
            source = f"file('{quoted}', 'Avro')"
            # Inline SETTINGS: per-call settings cost the embedded client a settings
            # snapshot and restore, more than the insert itself for a small batch.
            self.client.command(
                f"{writer.insert_sql(source)} SETTINGS schema_inference_use_cache_for_file = 0"
            )
        except Exception as exc:
            log.warning(
                "engine refused %s's Avro batch (%r); landing it row by row", writer.table, exc
            )
            landing.rows = 0
            for msg in landing.messages:
                self._add_rows(writer, msg)
        finally:
            os.unlink(path)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.flush()
        for tp in partitions:  # another sink commits them now
            self._committed.pop((tp.topic, tp.partition), None)

    def flush(self, due: Sequence[str] | None = None) -> None:
        """Insert the buffered rows of ``due`` topics (all by default), then commit their
        offsets; nothing is committed if an insert fails.

        Dead letters the sink itself wrote (for any topic) go in with every flush, so no
        offset is ever committed ahead of one.
        """
        flushed = set(self._since if due is None else due)
        if not flushed:
            return
        tables = set().union(*(self._tables[t] for t in flushed))
        with self.lock:
            for table, landing in self._landings.items():
                if table in tables and landing.messages:
                    with INSERT_SECONDS.labels(table).time():
                        self._land(landing)
            for table, buffer in self._buffers.items():
                if table in tables and buffer.rows:
                    with INSERT_SECONDS.labels(table).time():
                        self.client.insert(
                            buffer.writer.table,
                            buffer.columns,
                            column_names=list(buffer.writer.columns),
                            column_oriented=True,
                        )
        committed = [(t, p) for (t, p) in self._offsets if t in flushed]
        if committed:
            self._consumer.commit(
                offsets=[TopicPartition(t, p, self._offsets[(t, p)]) for t, p in committed],
                asynchronous=False,
            )
        for table in tables & self._buffers.keys():
            buffer = self._buffers[table]
            if buffer.rows:
                self.stats.rows[table] = self.stats.rows.get(table, 0) + buffer.rows
                ROWS_LANDED.labels(table).inc(buffer.rows)
            self._buffers[table] = _Buffer(buffer.writer)
            landed = self._landings.get(table)
            if landed is not None:
                if landed.rows:
                    self.stats.rows[table] = self.stats.rows.get(table, 0) + landed.rows
                    ROWS_LANDED.labels(table).inc(landed.rows)
                self._landings[table] = _Landing(landed.writer)
        for key in committed:
            self._committed[key] = self._offsets.pop(key)
        for t in flushed:
            self._since.pop(t, None)
        self.stats.batches += 1
        self.stats.last_flush_at = time.time()
        if self.on_flush is not None:
            self.on_flush(self.stats)
