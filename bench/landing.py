"""Sink landing benchmark: CPU per event of the two ways the sink lands ``usage.accepted``.

    python -m bench.landing [--events 50000] [--batch 500,1500,5000,50000]

Both paths insert the same generated events (Railyard's own producer batches, 500
events a message) into ``usage_events_raw`` of a fresh embedded store, one INSERT per
``batch`` events:

* **rows**: decode each message with fastavro in Python and hand clickhouse-connect the
  columns (the sink's path for a ClickHouse server, and the bench baseline's);
* **avro**: wrap the message bodies in an Avro container and let the engine read it
  (the sink's path for the embedded store).

The figure is process CPU (every engine thread included) per event; a second line per
batch size is an INSERT into a ``Null`` table, the cost of the insert pipeline without
writing a part. No Kafka: messages are handed to the writers directly.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from confluent_kafka import Message
from rich.console import Console
from rich.table import Table

from connectors.clickhouse.client import connect
from connectors.clickhouse.migrate import prepare_store
from connectors.clickhouse.sink import UsageEventsWriter
from streams.domain.cloudevents import from_cloudevent
from streams.domain.usage import UsageEvent
from streams.domain.workload import WorkloadSpec, iter_events
from streams.settings import Settings
from streams.wire.codec import UsageCodec
from streams.wire.container import container


def messages(events: int) -> list[Message]:
    spec = WorkloadSpec(
        seed=42,
        customers=200,
        events=events,
        start=datetime.now(UTC) - timedelta(days=1),
        duration=timedelta(days=1),
    )
    codec = UsageCodec()
    decoded = [from_cloudevent(g.event) for g in iter_events(spec)]  # type: ignore[arg-type]
    valid = [e for e in decoded if isinstance(e, UsageEvent)]
    batches = ((i, codec.encode_batch(valid[i : i + 500])) for i in range(0, len(valid), 500))
    return [Message(topic="usage.accepted", partition=0, offset=i, value=v) for i, v in batches]


def land_avro(
    client: Any, writer: UsageEventsWriter, group: list[Message], spool: Path, table: str
) -> int:
    """The sink's embedded path: the bodies in one Avro container, read by the engine."""
    landed = [writer.record(m) for m in group]
    with open(spool, "wb") as f:
        f.writelines(container(writer.schema, len(landed), [p for x in landed if x for p in x[0]]))
    sql = writer.insert_sql(f"file('{spool}', 'Avro')").replace(writer.table, table, 1)
    client.command(f"{sql} SETTINGS schema_inference_use_cache_for_file = 0")
    return sum(x[1] for x in landed if x)


def cpu_per_event(run: Callable[[], int]) -> float:
    gc.collect()
    started = time.process_time()
    events = run()
    return 1e6 * (time.process_time() - started) / events


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--batch", default="500,1500,5000,50000")
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="railyard-landing-"))
    try:
        client = connect(Settings(home=home).with_(clickhouse_dsn=f"chdb://{home / 'ch'}"))
        prepare_store(client)
        client.command("CREATE TABLE null_usage AS usage_events_raw ENGINE = Null")
        msgs = messages(args.events)
        writer = UsageEventsWriter()
        spool = home / "spool.avro"

        def rows(group: list[Message]) -> int:
            columns: list[list[object]] = [[] for _ in writer.columns]
            for msg in group:
                for row in writer.rows(msg):
                    for col, v in zip(columns, row, strict=True):
                        col.append(v)
            client.insert(
                writer.table, columns, column_names=list(writer.columns), column_oriented=True
            )
            return len(columns[0])

        def avro(group: list[Message], table: str = writer.table) -> int:
            return land_avro(client, writer, group, spool, table)

        def over(path: Callable[[list[Message]], int], per: int) -> Callable[[], int]:
            return lambda: sum(path(msgs[i : i + per]) for i in range(0, len(msgs), per))

        table = Table(
            "events per INSERT",
            "rows path (us/event)",
            "avro path (us/event)",
            "avro into Null (us/event)",
            title="Sink landing, CPU per event",
        )
        for size in (int(b) for b in args.batch.split(",")):
            per = max(1, size // 500)
            figures = (
                cpu_per_event(over(rows, per)),
                cpu_per_event(over(avro, per)),
                cpu_per_event(over(lambda g: avro(g, "null_usage"), per)),
            )
            table.add_row(f"{per * 500:,}", *(f"{f:.1f}" for f in figures))
        Console().print(table)
        print(
            f"{args.events:,} events, {os.cpu_count()} cores, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
        )
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
