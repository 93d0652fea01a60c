"""Codec benchmark: the hand-written Avro paths of the hot loop against fastavro.

    python -m bench.decode [--events 20000] [--rounds 12] [--attributed]

Usage (the ingest stage turning a ``usage`` body into events):

* **fastavro**: ``fastavro.schemaless_reader`` builds a dict per event (and per map),
  then ``UsageEvent(**record)`` (the path before ``streams/wire/usage_reader.py``, and the
  one older writer schemas still take);
* **reader**: ``streams.wire.usage_reader.read_usage`` walks the bytes into ``UsageEvent``s.

With ``--screen``, the ingest rule as the worker runs it (``screen``: decode, validate,
de-duplicate) with each decoder: fastavro cannot say how big each event of a batch was,
so a batch larger than ``max_event_bytes`` has every event's size estimated instead.

With ``--attributed``, ``usage.attributed`` bodies (the same events, attributed under
the benchmark catalog): fastavro's ``ATTRIBUTED.encode`` and ``decode`` against
``streams.wire.contributions`` (the ingest worker writes them, the window worker reads).

Same bodies (Railyard's producer batches of 500 events), process CPU per event; the
rounds alternate the paths and the table shows the minimum and the median, since a
shared machine only ever adds time.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table

from bench.ingest import bench_catalog
from bench.landing import messages
from connectors.kafka.partitioner import partition_for
from streams.agents.attribute import Attributor
from streams.agents.ingest_rules import screen
from streams.domain.attribution import route
from streams.domain.dedup import SeenEvents, event_digest
from streams.domain.usage import UsageEvent
from streams.domain.validation import Limits
from streams.settings import Settings
from streams.wire.codec import UsageCodec
from streams.wire.contributions import ContributionsWriter, read_contributions
from streams.wire.records import ATTRIBUTED
from streams.wire.usage_reader import WireEvents

Paths = dict[str, Callable[[], None]]


def usage_paths(bodies: list[bytes], codec: UsageCodec) -> Paths:
    def fastavro_path() -> None:
        for body in bodies:
            [UsageEvent(**r) for r in codec.decode_records(body)]

    def reader_path() -> None:
        for body in bodies:
            codec.decode_events(body)

    assert [UsageEvent(**r) for b in bodies for r in codec.decode_records(b)] == [
        e for b in bodies for e in codec.decode_events(b).events
    ]
    return {"fastavro": fastavro_path, "reader": reader_path}


class FastavroCodec(UsageCodec):
    """The usage codec with fastavro as the only decoder (event sizes unknown)."""

    def decode_events(self, payload: bytes) -> WireEvents:
        return WireEvents([UsageEvent(**r) for r in self.decode_records(payload)], -1)


def screen_paths(bodies: list[bytes], codec: UsageCodec) -> Paths:
    catalog = bench_catalog(Settings())
    meters, limits = catalog.meter_index, Limits()
    now = max(e.time for b in bodies for e in codec.decode_events(b).events)

    def path(decoder: UsageCodec) -> Callable[[], None]:
        def run() -> None:
            seen = SeenEvents()
            for offset, body in enumerate(bodies):
                screened = screen(
                    body,
                    offset,
                    codec=decoder,
                    seen=seen,
                    now=now,
                    limits=limits,
                    max_message_bytes=1 << 20,
                    meters=meters,
                )
                assert not screened.rejected

        return run

    return {"fastavro + screen": path(FastavroCodec()), "reader + screen": path(codec)}


def attributed_paths(bodies: list[bytes], codec: UsageCodec) -> Paths:
    events = [e for b in bodies for e in codec.decode_events(b).events]
    catalog = bench_catalog(Settings())
    routed = route(
        events,
        [event_digest(e.source, e.id) for e in events],
        catalog,
        lambda customer: partition_for(customer.encode(), 4),
    )
    records = Attributor._bodies(routed.by_target, catalog.version, 0)
    for record in records:
        record.pop("target")
        record["progress"] = [{"source_partition": 0, "event_time": max(record["time"])}]
    writer = ContributionsWriter()
    payloads = [ATTRIBUTED.encode(r) for r in records]
    assert payloads == [writer.encode(r) for r in records]

    def fastavro_path() -> None:
        for record, payload in zip(records, payloads, strict=True):
            ATTRIBUTED.encode(record)
            ATTRIBUTED.decode(payload)

    def wire_path() -> None:
        for record, payload in zip(records, payloads, strict=True):
            writer.encode(record)
            read_contributions(payload)

    return {"fastavro (encode + decode)": fastavro_path, "contributions_wire": wire_path}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--attributed", action="store_true", help="usage.attributed bodies")
    ap.add_argument("--screen", action="store_true", help="the whole ingest rule per body")
    args = ap.parse_args()
    codec = UsageCodec()
    bodies = [m.value() for m in messages(args.events)]
    events = sum(len(codec.decode_events(b).events) for b in bodies)
    pick = attributed_paths if args.attributed else screen_paths if args.screen else usage_paths
    paths = pick(bodies, codec)
    figures: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(args.rounds):
        for name, run in paths.items():
            started = time.process_time()
            run()
            figures[name].append(1e6 * (time.process_time() - started) / events)
    table = Table(
        "path",
        "min (us/event)",
        "median (us/event)",
        title=f"{'usage.attributed' if args.attributed else 'Decoding usage'}, {events:,} events x {args.rounds} rounds",
    )
    for name, values in figures.items():
        table.add_row(name, f"{min(values):.1f}", f"{statistics.median(values):.1f}")
    Console().print(table)
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC")


if __name__ == "__main__":
    main()
