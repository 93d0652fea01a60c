"""HTTP ingest benchmark: ``railyard api`` against the direct producer, in one run.

    python -m bench.http_ingest [--events 200000] [--batch 100] [--clients 4]

1. Starts the local broker (or uses ``--bootstrap``), makes two namespaces, publishes the
   benchmark catalog to each and generates the same events for both (seed 42).
2. Direct: ``UsageProducer.send`` for every event, then ``flush`` (what ``railyard
   produce`` does, without reading a file): events / seconds until every one is acked.
3. HTTP: ``railyard api`` in its own process, ``--clients`` threads each posting
   ``--batch`` events per request (bodies encoded beforehand, so the clients measure the
   server) until every request got its 204, i.e. the broker acknowledged every event.
Writes bench/out/http_ingest.json and a table in bench/out/http_ingest.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import shutil
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import requests
from rich.table import Table

from bench.ingest import OUT, SEED, bench_catalog, console, namespace, progress
from connectors.api import keys, keystore
from connectors.kafka.admin import create_topics
from connectors.kafka.catalog_feed import publish_catalog
from connectors.kafka.producer import UsageProducer
from connectors.processes import ManagedProcess, spawn
from streams.domain.cloudevents import from_cloudevent
from streams.domain.usage import UsageEvent
from streams.domain.workload import WorkloadSpec, iter_events
from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def workload(events: int) -> list[dict[str, Any]]:
    spec = WorkloadSpec(
        seed=SEED,
        customers=200,
        events=events,
        start=datetime.now(UTC) - timedelta(days=1),
        duration=timedelta(days=1),
    )
    return [g.event for g in iter_events(spec) if g.valid and g.event is not None]


def run_direct(settings: Settings, events: list[dict[str, Any]]) -> float:
    decoded = []
    for e in events:
        event = from_cloudevent(e)
        assert isinstance(event, UsageEvent)
        decoded.append(event)
    producer = UsageProducer(settings, batch_events=500)
    with progress() as bar:
        task = bar.add_task("direct: UsageProducer", total=len(decoded))
        began = time.monotonic()
        for i, event in enumerate(decoded, 1):
            producer.send(event)
            if i % 10_000 == 0:
                bar.update(task, completed=i)
        report = producer.close()
        seconds = time.monotonic() - began
        bar.update(task, completed=len(decoded))
    assert report.delivered == len(decoded), report
    return len(decoded) / seconds


def start_api(settings: Settings) -> tuple[ManagedProcess, str]:
    port_file = settings.run_dir / "api.port"
    port_file.unlink(missing_ok=True)
    proc = spawn("api", ["api"], settings)
    deadline = time.monotonic() + 60
    while not port_file.exists():
        assert proc.alive and time.monotonic() < deadline, proc.log_tail()
        time.sleep(0.2)
    url = f"http://127.0.0.1:{port_file.read_text()}"
    while True:
        try:
            if requests.get(url + "/openapi.json", timeout=2).ok:
                return proc, url
        except requests.RequestException:
            time.sleep(0.2)


def run_http(
    settings: Settings, events: list[dict[str, Any]], batch: int, clients: int
) -> tuple[float, dict[int, int], float]:
    key = keys.new_key()
    keystore.save(keystore.key_file(settings), [keys.create("bench", [], key, datetime.now(UTC))])
    proc, url = start_api(settings)
    bodies: queue.SimpleQueue[bytes] = queue.SimpleQueue()
    for start in range(0, len(events), batch):
        bodies.put(json.dumps(events[start : start + batch]).encode())
    requests_total = bodies.qsize()
    statuses: dict[int, int] = {}
    done = [0]
    lock = threading.Lock()
    headers = {
        "Authorization": f"Bearer {key}",
        "Content-Type": "application/cloudevents-batch+json",
    }

    def client() -> None:
        session = requests.Session()
        while True:
            try:
                body = bodies.get_nowait()
            except queue.Empty:
                return
            while True:
                answer = session.post(url + "/api/v1/events", data=body, headers=headers)
                with lock:
                    statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
                if answer.status_code == 204:
                    break
                time.sleep(float(answer.headers.get("Retry-After", "0.1")))
            with lock:
                done[0] += 1

    try:
        with progress() as bar:
            task = bar.add_task(f"HTTP: {clients} clients x {batch}/request", total=len(events))
            threads = [threading.Thread(target=client) for _ in range(clients)]
            began = time.monotonic()
            for t in threads:
                t.start()
            while any(t.is_alive() for t in threads):
                bar.update(task, completed=min(len(events), done[0] * batch))
                time.sleep(0.2)
            seconds = time.monotonic() - began
            bar.update(task, completed=len(events))
        assert done[0] == requests_total
        rss = psutil.Process(proc.pid).memory_info().rss / 2**20
    finally:
        proc.stop()
    return len(events) / seconds, statuses, rss


def commit() -> str:
    out = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    return out.stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=100, help="events per HTTP request")
    ap.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients")
    ap.add_argument("--bootstrap", default="", help="use a running broker instead of starting one")
    args = ap.parse_args()
    os.environ.setdefault(
        "RAILYARD_KAFKA_JVM_OPTS", "-Xms512m -Xmx512m -XX:+UseParallelGC -Djava.awt.headless=true"
    )
    OUT.mkdir(parents=True, exist_ok=True)
    for name in ("http-direct", "http-api"):
        shutil.rmtree(OUT / "home" / name, ignore_errors=True)
    base = Settings(home=OUT / "home", api_port=0, api_rate=1e9, api_burst=10**9)
    broker = None
    if args.bootstrap:
        base = base.with_(kafka_bootstrap=args.bootstrap)
    else:
        from connectors.kafka.stack import LocalBroker

        broker = LocalBroker(base)
        broker.install()
        broker.up()
    try:
        direct, api = namespace(base, "http-direct"), namespace(base, "http-api")
        catalog = bench_catalog(base)
        for s in (direct, api):
            create_topics(s)
            publish_catalog(s, catalog)
        events = workload(args.events)
        direct_rate = run_direct(direct, events)
        http_rate, statuses, rss = run_http(api, events, args.batch, args.clients)
    finally:
        if broker is not None:
            broker.down()
    command = (
        f"python -m bench.http_ingest --events {args.events} --batch {args.batch}"
        f" --clients {args.clients}"
    )
    table = Table("path", "events", "events/s", "ratio", title="HTTP ingest vs direct producer")
    table.add_row(
        "direct (UsageProducer.send, flush)", f"{len(events):,}", f"{direct_rate:,.0f}", "1"
    )
    table.add_row(
        f"railyard api ({args.clients} clients, {args.batch} events/request, 204 after ack)",
        f"{len(events):,}",
        f"{http_rate:,.0f}",
        f"{http_rate / direct_rate:.2f}",
    )
    console.print(table)
    console.print(f"HTTP answers: {statuses}; API process RSS {rss:.0f} MiB")
    machine = f"{platform.processor() or platform.machine()}, {psutil.cpu_count()} cores"
    md = (
        "| path | events | events/s | ratio to direct |\n|---|---|---|---|\n"
        f"| direct (`UsageProducer.send`, `flush`) | {len(events):,} | {direct_rate:,.0f} | 1 |\n"
        f"| `railyard api`: {args.clients} clients, {args.batch} events/request, 204 after the"
        f" broker's ack | {len(events):,} | {http_rate:,.0f} | {http_rate / direct_rate:.2f} |\n\n"
        f"HTTP answers {statuses}; API process RSS {rss:.0f} MiB. Machine: {machine},"
        f" Python {platform.python_version()}; commit {commit()},"
        f" {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.\nCommand: `{command}`\n"
    )
    (OUT / "http_ingest.md").write_text(md)
    (OUT / "http_ingest.json").write_text(
        json.dumps(
            {
                "events": len(events),
                "direct_events_per_s": direct_rate,
                "http_events_per_s": http_rate,
                "batch": args.batch,
                "clients": args.clients,
                "statuses": statuses,
                "api_rss_mib": rss,
                "command": command,
            },
            indent=2,
        )
    )
    print(md)


if __name__ == "__main__":
    main()
