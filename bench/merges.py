"""Merge benchmark: CPU of landing ``usage_events_raw`` the way the sink does, with and
without the streaming tables' merge tuning (``connectors/clickhouse/migrate.py``).

    python -m bench.merges [--events 200000] [--per-insert 1500] [--every 0.1]

The sink inserts a part every ``RAILYARD_SINK_LINGER`` (0.1 s; ~1,500 events at 15k
events/s) and ClickHouse merges them in the background. Each variant lands the same
events through the engine's Avro reader into a fresh embedded store, one INSERT per
``--per-insert`` events every ``--every`` seconds, then waits for merges to settle.
The figure is the whole process's CPU (merge threads included) per event. chDB opens
one store per process, so each variant runs in a child process of its own.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

VARIANTS = ("default", "tuned")


def land(variant: str, events: int, per_insert: int, every: float) -> dict[str, float]:
    from bench.landing import land_avro, messages
    from connectors.clickhouse.client import connect
    from connectors.clickhouse.migrate import apply_migrations, prepare_store
    from connectors.clickhouse.sink import UsageEventsWriter
    from streams.settings import Settings

    home = Path(tempfile.mkdtemp(prefix="railyard-merges-"))
    try:
        client = connect(Settings(home=home).with_(clickhouse_dsn=f"chdb://{home / 'ch'}"))
        (prepare_store if variant == "tuned" else apply_migrations)(client)
        msgs = messages(events)
        writer, spool = UsageEventsWriter(), home / "spool.avro"
        per = max(1, per_insert // 500)

        def cpu() -> float:
            usage = resource.getrusage(resource.RUSAGE_SELF)
            return usage.ru_utime + usage.ru_stime

        started = cpu()
        for i in range(0, len(msgs), per):
            land_avro(client, writer, msgs[i : i + per], spool, writer.table)
            time.sleep(every)
        for _ in range(120):  # merges settle: none running twice in a row
            running = "SELECT count() FROM system.merges"
            if not client.query(running).result_rows[0][0]:
                time.sleep(1)
                if not client.query(running).result_rows[0][0]:
                    break
            time.sleep(1)
        parts = client.query(
            "SELECT count() FROM system.parts WHERE table = 'usage_events_raw' AND active"
        ).result_rows[0][0]
        return {"us_per_event": 1e6 * (cpu() - started) / events, "parts": parts}
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--per-insert", type=int, default=1500)
    ap.add_argument("--every", type=float, default=0.1)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.variant:
        print(json.dumps(land(args.variant, args.events, args.per_insert, args.every)))
        return
    console = Console(stderr=True)
    results: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
    for round_ in range(args.rounds):
        for variant in VARIANTS:  # alternating, so drift on the machine hits both
            console.print(f"round {round_ + 1}/{args.rounds}: {variant} ...")
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bench.merges",
                    "--variant",
                    variant,
                    "--events",
                    str(args.events),
                    "--per-insert",
                    str(args.per_insert),
                    "--every",
                    str(args.every),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            results[variant].append(json.loads(done.stdout.strip().splitlines()[-1]))
    table = Table(
        "merge selector",
        "CPU per event (us), each round",
        "active parts at the end",
        title=f"Landing {args.events:,} events, {args.per_insert:,} an INSERT every {args.every} s",
    )
    for variant, runs in results.items():
        table.add_row(
            "base 5 (ClickHouse default)" if variant == "default" else "base 20 (streaming tables)",
            ", ".join(f"{r['us_per_event']:.1f}" for r in runs),
            ", ".join(str(int(r["parts"])) for r in runs),
        )
    Console().print(table)
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC")


if __name__ == "__main__":
    main()
