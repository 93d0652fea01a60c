"""Ingest benchmark: a bare consumer loop vs the Railyard pipeline, in one run, on one data set.

    python -m bench.ingest [--events 1000000] [--latency-seconds 30] [--rate 5000]

1. Starts the local broker and pre-loads N generated events into a fresh `usage` topic.
2. Baseline (a): bench/baseline.py consumes them, decodes with fastavro and inserts
   into its own embedded ClickHouse in batches.
3. Railyard (b): the workers (Faust ingest: decode, validate, dedup, DLQ, attribute; by
   default two such processes in one consumer group, as on a 2-core deployment, and one
   for the window stage) and the sink (batched inserts) do the same work into another
   embedded ClickHouse.
4. Latency: with each running, a producer sends at a steady rate; produce -> queryable
   is ``ingested_at - time`` of each row (both stamped on this machine's clock).
5. Peak RSS and CPU of every process. Writes bench/out/ingest.json and a table in
   bench/out/ingest-<stages>.md (bench/RESULTS.md keeps it, with the runs around it).

Throughput is events / (last insert - first insert), read from each store's
``ingested_at``, so process start-up is excluded for both; it is reported apart.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from connectors.clickhouse.analyst import query
from connectors.kafka.catalog_feed import publish_catalog
from connectors.kafka.producer import UsageProducer
from connectors.kafka.topics import USAGE, topic_name
from connectors.processes import ManagedProcess, spawn
from streams import compiled
from streams.domain.catalog import Catalog, parse_catalog
from streams.domain.cloudevents import from_cloudevent
from streams.domain.usage import UsageEvent
from streams.domain.workload import WorkloadSpec, customer_profiles, iter_events
from streams.domain.workload.catalog import catalog_yaml
from streams.settings import Settings, Stage

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
console = Console(stderr=True)


@dataclass
class Side:
    """One contender's figures."""

    events: int = 0
    seconds: float = 0.0
    startup_s: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    latency_events: int = 0
    windowed_events: int = 0
    """Events counted in event-time windows (attribution and windowing ran on all of them)."""
    windowed_seconds: float = 0.0
    """First insert of an event -> the last window row of the pre-loaded events landed."""
    peak_rss_mib: dict[str, float] = field(default_factory=dict)
    cpu_s: dict[str, float] = field(default_factory=dict)
    """utime + stime of each process over its whole life, the broker's over this side's turn."""

    def cpu_us_per_event(self) -> dict[str, float]:
        """CPU an event handled (the latency run's included), per process."""
        handled = self.events + self.latency_events
        return {k: v * 1e6 / handled for k, v in self.cpu_s.items()} if handled else {}

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    @property
    def windowed_rate(self) -> float:
        return self.events / self.windowed_seconds if self.windowed_seconds else 0.0


def progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def namespace(base: Settings, name: str) -> Settings:
    home = OUT / "home" / name
    return base.with_(
        home=home,
        topic_prefix=f"bench{uuid.uuid4().hex[:6]}.",
        clickhouse_dsn=f"chdb://{home / 'clickhouse'}",
        worker_id="railyard-bench",
    )


SEED, CUSTOMERS, LATENCY_SUBJECTS = 42, 200, 50


def bench_catalog(settings: Settings) -> Catalog:
    """The example catalog's meters, claiming every customer of the benchmark's workload."""
    text = settings.catalog.read_text()
    meters = text[text.index("meters:") : text.index("\n#", text.index("meters:"))]
    profiles = customer_profiles(WorkloadSpec(seed=SEED, customers=CUSTOMERS))
    latency_keys = ", ".join(f"key_lat_{i}" for i in range(LATENCY_SUBJECTS))
    text = catalog_yaml(meters, profiles) + (
        f"  - customer: {profiles[0].name}\n    effective_from: 2020-01-01T00:00:00Z\n"
        f"    subjects: [{latency_keys}]\n"
    )
    catalog, problems = parse_catalog(text, "bench")
    assert catalog is not None, problems
    return catalog


def preload(settings: Settings, events: int) -> None:
    spec = WorkloadSpec(
        seed=SEED,
        customers=CUSTOMERS,
        events=events,
        start=datetime.now(UTC) - timedelta(days=1),
        duration=timedelta(days=1),
    )
    producer = UsageProducer(settings, batch_events=500)
    with progress() as bar:
        task = bar.add_task(f"pre-loading {topic_name(settings, USAGE)}", total=events)
        for i, generated in enumerate(iter_events(spec), 1):
            event = from_cloudevent(generated.event)  # type: ignore[arg-type]
            assert isinstance(event, UsageEvent)
            producer.send(event)
            if i % 10_000 == 0:
                bar.update(task, completed=i)
        report = producer.flush()
        bar.update(task, completed=events)
    assert report.delivered == events, report


def vm_hwm_mib(pid: int) -> float:
    """Peak resident set size of a live process (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a live process so far."""
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def last_json(output: str) -> dict[str, Any]:
    """The summary a bench/baseline.py run prints as its last line."""
    return dict(json.loads(output.strip().splitlines()[-1]))


def take_turn(broker_pid: int | None, run: Callable[[], Side]) -> Side:
    """Run one side; with a broker of our own, charge the side its CPU over the turn."""
    before = cpu_seconds(broker_pid) if broker_pid else 0.0
    side = run()
    if broker_pid:
        side.cpu_s["broker"] = cpu_seconds(broker_pid) - before
    return side


def store_span(settings: Settings, source_filter: str = "1") -> tuple[int, float]:
    rows = query(
        settings,
        f"SELECT count(), dateDiff('millisecond', min(ingested_at), max(ingested_at)) "
        f"FROM usage_events_raw WHERE {source_filter}",
    ).rows[0]
    return int(rows[0]), int(rows[1]) / 1000


def latencies(settings: Settings) -> tuple[int, float, float]:
    row = query(
        settings,
        "SELECT count(), quantileExact(0.5)(ms), quantileExact(0.99)(ms) FROM ("
        "SELECT dateDiff('millisecond', time, ingested_at) AS ms FROM usage_events_raw "
        "WHERE source = 'bench-latency')",
    ).rows[0]
    return int(row[0]), float(row[1]), float(row[2])


def steady_producer(settings: Settings, rate: int, seconds: float) -> int:
    """Send ``rate`` events/s for ``seconds``, each stamped with its send time."""
    producer = UsageProducer(settings, batch_events=100, linger_s=0.02)
    sent = 0
    start = time.monotonic()
    tick = 0.01
    while (elapsed := time.monotonic() - start) < seconds:
        due = int(elapsed * rate)
        while sent < due:
            producer.send(
                UsageEvent(
                    id=f"lat-{sent}",
                    source="bench-latency",
                    type="api.calls",
                    subject=f"key_lat_{sent % LATENCY_SUBJECTS}",
                    time=datetime.now(UTC),
                    values={"calls": Decimal(1)},
                    dimensions={"endpoint": "/v1/bench"},
                )
            )
            sent += 1
        producer.sweep()
        time.sleep(tick)
    producer.flush()
    return sent


def wait_rows(
    settings: Settings,
    total: int,
    label: str,
    procs: list[ManagedProcess],
    where: str = "1",
    sql: str = "SELECT count() FROM usage_events_raw WHERE {where}",
) -> None:
    with progress() as bar:
        task = bar.add_task(label, total=total)
        while True:
            for p in procs:
                if not p.alive:
                    raise RuntimeError(f"{p.name} died:\n{p.log_tail()}")
            try:
                n = int(query(settings, sql.format(where=where)).rows[0][0] or 0)
            except Exception:
                n = 0
            bar.update(task, completed=n)
            if n >= total:
                return
            time.sleep(2)  # each count takes the sink's lock: poll gently


WINDOWED = "SELECT sum(events) FROM usage_windows"


def windowed_span(settings: Settings) -> float:
    """Seconds from the first event landed to the last window row landed."""
    row = query(
        settings,
        "SELECT dateDiff('millisecond', (SELECT min(ingested_at) FROM usage_events_raw), "
        "max(updated_at)) FROM usage_windows_raw",
    ).rows[0]
    return int(row[0]) / 1000


def run_baseline(settings: Settings, events: int, rate: int, latency_s: float) -> Side:
    side = Side()
    env = {**os.environ, **settings.to_env()}
    topic = topic_name(settings, USAGE)
    started = time.monotonic()
    cmd = [
        sys.executable,
        str(ROOT / "bench" / "baseline.py"),
        "--topic",
        topic,
        "--group",
        "bench-baseline",
    ]
    with progress() as bar:
        bar.add_task("baseline consuming (bare loop)", total=None)
        done = subprocess.run(
            [*cmd, "--expect", str(events)], env=env, capture_output=True, text=True, check=True
        )
    result = last_json(done.stdout)
    side.peak_rss_mib["baseline"] = result["peak_rss_mib"]
    side.cpu_s["baseline"] = result["cpu_s"]
    side.events, side.seconds = store_span(settings)
    side.startup_s = time.monotonic() - started - side.seconds
    # Latency: a follower consuming what the steady producer sends.
    follower = subprocess.Popen(
        [*cmd, "--expect", str(10**12), "--idle-exit", "5"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(3)
    steady_producer(settings, rate, latency_s)
    out, _ = follower.communicate(timeout=120)
    side.cpu_s["baseline"] += last_json(out)["cpu_s"]  # the same work, for the latency run
    side.latency_events, side.p50_ms, side.p99_ms = latencies(settings)
    return side


def run_railyard(
    settings: Settings,
    events: int,
    rate: int,
    latency_s: float,
    one_worker: bool,
    ingest_workers: int = 2,
) -> Side:
    side = Side()
    started = time.monotonic()
    procs = [spawn("sink", ["sink"], settings)]
    if not one_worker and Stage.WINDOW in settings.stages:  # a process per stage group
        metering = settings.stages & {Stage.WINDOW, Stage.RATE}
        ingest = settings.with_(stages=settings.stages - metering, worker_id="railyard-ingest")
        for n in range(1, ingest_workers + 1):  # one consumer group: they share the partitions
            name = "worker-ingest" if ingest_workers == 1 else f"worker-ingest-{n}"
            procs.append(spawn(name, ["worker"], ingest))
        procs.append(  # window, and the rate stage with its billing.book state
            spawn(
                "worker-metering",
                ["worker"],
                settings.with_(stages=metering, worker_id="railyard-metering"),
            )
        )
    else:
        procs.append(spawn("worker", ["worker"], settings))
    try:
        wait_rows(settings, events, "railyard pipeline (worker + sink)", procs)
        side.events, side.seconds = store_span(settings)
        side.startup_s = time.monotonic() - started - side.seconds
        if Stage.WINDOW in settings.stages:
            # The latency run starts once every stage has caught up: a steady rate, not
            # the tail of the backlog, and the windows' own end-to-end rate is measured.
            wait_rows(settings, events, "event-time windows", procs, sql=WINDOWED)
            side.windowed_seconds = windowed_span(settings)
        sent = steady_producer(settings, rate, latency_s)
        wait_rows(settings, sent, "latency run", procs, "source = 'bench-latency'")
        side.latency_events, side.p50_ms, side.p99_ms = latencies(settings)
        total = events + side.latency_events
        deadline = time.monotonic() + 300
        while (
            Stage.WINDOW in settings.stages
            and side.windowed_events < total
            and time.monotonic() < deadline
        ):
            side.windowed_events = int(query(settings, WINDOWED).rows[0][0] or 0)
            time.sleep(1)
        for p in procs:
            side.peak_rss_mib[p.name] = vm_hwm_mib(p.pid)
            side.cpu_s[p.name] = cpu_seconds(p.pid)
    finally:
        for p in procs:
            p.stop()
    return side


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem = int(
        next(
            x for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal")
        ).split()[1]
    )
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem / 1024 / 1024, 1),
        "python": platform.python_version(),
        "hot_path": compiled.STATUS.describe(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit,
    }


def per_process(side: Side) -> str:
    """Where each side's CPU goes: "sink 31.2, ..., broker 24.0 (sum 121.4)"."""
    cpu = side.cpu_us_per_event()
    parts = ", ".join(f"{k} {v:.1f}" for k, v in cpu.items())
    return f"{parts} (sum {sum(cpu.values()):.1f})" if cpu else "-"


def report(args: argparse.Namespace, base: Side, ry: Side, info: dict[str, Any]) -> str:
    ratio = ry.rate / base.rate if base.rate else 0.0
    rss = max(ry.peak_rss_mib.values())
    rows = [
        (
            "events/s (steady state)",
            f"{base.rate:,.0f}",
            f"{ry.rate:,.0f}",
            f"ratio {ratio:.2f}",
            ">= 0.5 (stretch 0.8)",
            "yes" if ratio >= 0.5 else "NO",
        ),
        *(
            [
                (
                    "events/s through windows (first event landed -> last window row)",
                    "-",
                    f"{ry.windowed_rate:,.0f}",
                    f"ratio {ry.windowed_rate / base.rate if base.rate else 0:.2f}",
                    "",
                    "",
                )
            ]
            if ry.windowed_seconds
            else []
        ),
        (
            "events landed",
            f"{base.events:,}",
            f"{ry.events:,}",
            "",
            f"{args.events:,}",
            "yes" if ry.events == args.events else "NO",
        ),
        *(
            [
                (
                    "events in windows (attributed + windowed)",
                    "-",
                    f"{ry.windowed_events:,}",
                    "",
                    f"{args.events + ry.latency_events:,}",
                    "yes" if ry.windowed_events == args.events + ry.latency_events else "NO",
                )
            ]
            if "window" in args.stages
            else []
        ),
        (
            "start-up before first insert (s)",
            f"{base.startup_s:.1f}",
            f"{ry.startup_s:.1f}",
            "",
            "",
            "",
        ),
        (
            f"latency p50 at {args.rate}/s (ms)",
            f"{base.p50_ms:.0f}",
            f"{ry.p50_ms:.0f}",
            "",
            "",
            "",
        ),
        (
            f"latency p99 at {args.rate}/s (ms)",
            f"{base.p99_ms:.0f}",
            f"{ry.p99_ms:.0f}",
            "",
            "<= 1000",
            "yes" if ry.p99_ms <= 1000 else "NO",
        ),
        (
            "peak RSS (MiB)",
            f"{base.peak_rss_mib.get('baseline', 0):.0f}",
            ", ".join(f"{k} {v:.0f}" for k, v in ry.peak_rss_mib.items()),
            "",
            "<= 1024 each",
            "yes" if rss <= 1024 else "NO",
        ),
        ("CPU per event handled (us)", per_process(base), per_process(ry), "", "", ""),
    ]
    table = Table(
        "metric", "baseline (a)", "railyard (b)", "", "target", "met", title="Ingest benchmark"
    )
    for r in rows:
        table.add_row(*r)
    Console().print(table)
    lines = [
        "| metric | baseline (a) | railyard (b) | | target | met |",
        "|---|---|---|---|---|---|",
        *("| " + " | ".join(r) + " |" for r in rows),
    ]
    return "\n".join(lines) + (
        f"\n\nMachine: {info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB, "
        f"Python {info['python']}; commit {info['commit']}, {info['date']}; "
        f"{info['hot_path']}.\n"
        f"Command: `python -m bench.ingest --events {args.events} --rate {args.rate} "
        f"--latency-seconds {args.latency_seconds} --stages {args.stages}"
        f"{' --one-worker' if args.one_worker else ''}"
        f" --ingest-workers {args.ingest_workers}`\n"
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--rate", type=int, default=5000)
    ap.add_argument("--latency-seconds", type=float, default=30.0)
    ap.add_argument("--bootstrap", default="", help="use a running broker instead of starting one")
    ap.add_argument(
        "--stages",
        default="ingest,attribute,window,rate",
        help="agents the Railyard worker runs (ingest alone = the issue-2 pipeline; without "
        "rate = the issue-3 pipeline, before the billing book kept its state on billing.book)",
    )
    ap.add_argument(
        "--one-worker",
        action="store_true",
        help="run every stage in one worker process (default: ingest+attribute in one, "
        "window in another, as a deployment with two or more cores would)",
    )
    ap.add_argument(
        "--ingest-workers",
        type=int,
        default=2,
        help="ingest+attribute worker processes, one consumer group sharing the usage "
        "partitions (default 2: one per core here; the stage is single-threaded Python)",
    )
    args = ap.parse_args()
    # The dev/CI broker trades steady-state speed for start-up (C1 only); a benchmark
    # broker is throughput-bound like a production one, so it gets the full JIT.
    os.environ.setdefault(
        "RAILYARD_KAFKA_JVM_OPTS", "-Xms512m -Xmx512m -XX:+UseParallelGC -Djava.awt.headless=true"
    )
    OUT.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(OUT / "home" / "baseline", ignore_errors=True)  # stores of an earlier run
    shutil.rmtree(OUT / "home" / "railyard", ignore_errors=True)
    base_settings = Settings(home=OUT / "home")
    broker = None
    if args.bootstrap:
        base_settings = base_settings.with_(kafka_bootstrap=args.bootstrap)
    else:
        from connectors.kafka.stack import LocalBroker

        broker = LocalBroker(base_settings)
        broker.install()
        broker.up()
    try:
        from connectors.kafka.admin import create_topics

        a, b = namespace(base_settings, "baseline"), namespace(base_settings, "railyard")
        b = b.with_(topic_prefix=a.topic_prefix + "r.", stages=args.stages)
        catalog = bench_catalog(base_settings)
        for s in (a, b):
            create_topics(s)
            publish_catalog(s, catalog)
        # Each side gets its own copy of the same generated events (same seed), so
        # neither sees the other's offsets or rows.
        preload(a, args.events)
        preload(b, args.events)
        broker_pid = broker.pid() if broker is not None else None
        console.print("[bold]baseline (a)")
        base = take_turn(
            broker_pid, lambda: run_baseline(a, args.events, args.rate, args.latency_seconds)
        )
        console.print("[bold]railyard (b)")
        ry = take_turn(
            broker_pid,
            lambda: run_railyard(
                b,
                args.events,
                args.rate,
                args.latency_seconds,
                args.one_worker,
                args.ingest_workers,
            ),
        )
    finally:
        if broker is not None:
            broker.down()
    info = machine()
    (OUT / "ingest.json").write_text(
        json.dumps(
            {
                "args": vars(args),
                "baseline": base.__dict__,
                "railyard": ry.__dict__,
                "machine": info,
            },
            indent=2,
        )
    )
    md = report(args, base, ry, info)
    (OUT / f"ingest-{args.stages.replace(',', '-')}.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
