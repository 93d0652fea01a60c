"""Decode benchmark: the ingest stage's two ways of turning a ``usage`` body into events.

    python -m bench.decode [--events 20000] [--rounds 12]

* **fastavro**: ``fastavro.schemaless_reader`` builds a dict per event (and per map),
  then ``UsageEvent(**record)`` (the path before ``streams/usage_reader.py``, and the
  one older writer schemas still take);
* **reader**: ``streams.usage_reader.read_usage`` walks the bytes into ``UsageEvent``s.

Same bodies (Railyard's producer batches of 500 events), process CPU per event; the
rounds alternate the two and the table shows the minimum and the median, since a
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

from bench.landing import messages
from streams.codec import UsageCodec
from streams.domain.usage import UsageEvent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=12)
    args = ap.parse_args()
    codec = UsageCodec()
    bodies = [m.value() for m in messages(args.events)]
    events = sum(len(codec.decode_events(b).events) for b in bodies)

    def fastavro_path() -> None:
        for body in bodies:
            [UsageEvent(**r) for r in codec.decode_records(body)]

    def reader_path() -> None:
        for body in bodies:
            codec.decode_events(body)

    paths: dict[str, Callable[[], None]] = {"fastavro": fastavro_path, "reader": reader_path}
    assert [UsageEvent(**r) for b in bodies for r in codec.decode_records(b)] == [
        e for b in bodies for e in codec.decode_events(b).events
    ]
    figures: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(args.rounds):
        for name, run in paths.items():
            started = time.process_time()
            run()
            figures[name].append(1e6 * (time.process_time() - started) / events)
    table = Table("path", "min (us/event)", "median (us/event)",
                  title=f"Decoding usage, {events:,} events x {args.rounds} rounds")  # fmt: skip
    for name, values in figures.items():
        table.add_row(name, f"{min(values):.1f}", f"{statistics.median(values):.1f}")
    Console().print(table)
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC")


if __name__ == "__main__":
    main()
