"""The bare baseline: one confluent-kafka consumer loop that decodes with fastavro and
inserts into the same ClickHouse engine in batches. No validation, no dedup, no DLQ:
the floor of what any Python pipeline on this stack can cost.

Prints one JSON line: events, first/last insert times, peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

from confluent_kafka import Consumer

from connectors.clickhouse.client import connect
from connectors.clickhouse.migrate import prepare_store
from connectors.clickhouse.sink import UsageEventsWriter
from streams.settings import Settings


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--topic", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--expect", type=int, required=True)
    ap.add_argument("--max-rows", type=int, default=50_000)
    ap.add_argument("--linger", type=float, default=0.1)  # the sink's default too
    ap.add_argument(
        "--idle-exit", type=float, default=0.0, help="stop after this long with no input"
    )
    args = ap.parse_args()
    settings = Settings()
    client = connect(settings)
    prepare_store(client)
    writer = UsageEventsWriter()
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": args.group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([args.topic])
    columns: list[list[object]] = [[] for _ in writer.columns]
    total = pending = 0
    first_at = last_at = 0.0
    started = last_input = time.monotonic()
    while total < args.expect:
        if args.idle_exit and not pending and time.monotonic() - last_input > args.idle_exit:
            break
        for msg in consumer.consume(5000, 0.05):
            if msg.error():
                continue
            last_input = time.monotonic()
            for row in writer.rows(msg):
                for col, v in zip(columns, row, strict=True):
                    col.append(v)
                pending += 1
        if pending and (pending >= args.max_rows or time.monotonic() - started >= args.linger):
            client.insert(
                writer.table, columns, column_names=list(writer.columns), column_oriented=True
            )
            consumer.commit(asynchronous=False)
            total += pending
            pending = 0
            columns = [[] for _ in writer.columns]
            last_at = time.time()
            first_at = first_at or last_at
            started = time.monotonic()
    consumer.close()
    client.close()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "events": total,
                "first_at": first_at,
                "last_at": last_at,
                "peak_rss_mib": usage.ru_maxrss / 1024,
                "cpu_s": usage.ru_utime + usage.ru_stime,
            }
        )
    )


if __name__ == "__main__":
    main()
