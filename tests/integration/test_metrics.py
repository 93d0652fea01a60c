"""The worker's and the sink's /metrics, scraped after a run, against the run's ground truth.

A workload with known valid, duplicate and invalid lines goes through a real worker and
sink; their counters must say exactly what happened: accepted == the valid unique events,
de-duplicated == the re-sent lines, dead-lettered by reason == the workload's defects,
rows landed == the events, no lag left once everything landed. The processes run on a
fixed clock (``RAILYARD_CLOCK_START``), so freshness is checked without the wall clock.
"""

from __future__ import annotations

import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from connectors.files import load_meters
from connectors.kafka import topics
from connectors.kafka.billing_commands import request_close
from connectors.kafka.producer import UsageProducer, produce_lines
from connectors.metrics import port_file
from streams.domain.validation import Limits
from streams.domain.workload import WorkloadSpec, generate
from streams.settings import Settings
from streams.wire.invoices import decode_invoice
from tests.integration.conftest import namespace
from tests.integration.harness import Pipeline, read_topic
from tests.integration.test_ingest import EXPECTED_REASON

pytestmark = pytest.mark.integration

CLOCK = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(settings: Settings, process: str) -> Samples:
    port = int(port_file(settings, process).read_text())
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def by_label(samples: Samples, name: str, label: str, **fixed: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for (sample, labels), v in samples.items():
        found = dict(labels)
        if sample == name and all(found.get(k) == x for k, x in fixed.items()):
            out[found[label]] = v
    return out


def test_worker_and_sink_metrics_match_the_run(kafka: Settings, tmp_path: Path) -> None:
    settings = namespace(kafka, tmp_path / "home", clock_start=CLOCK.isoformat())
    wl = generate(
        WorkloadSpec(
            seed=17,
            customers=8,
            events=2000,
            start=CLOCK - timedelta(days=1),
            duration=timedelta(hours=23),
            duplicate_rate=0.1,
            invalid_rate=0.05,
            unknown_subject_rate=0.03,
        )
    )
    valid = [g for g in wl.events if g.valid and g.event is not None]
    unique = {g.event["id"] for g in valid if g.event is not None}
    duplicates = len(valid) - len(unique)
    defects = Counter(EXPECTED_REASON[g.defect] for g in wl.events if g.defect is not None)
    newest = max(
        datetime.fromisoformat(str(g.event["time"]).replace("Z", "+00:00"))
        for g in valid
        if g.event is not None
    )
    assert duplicates > 0 and defects, "the workload must exercise every counter"

    pipeline = Pipeline(settings)
    try:
        pipeline.start()
        s = settings
        summary = produce_lines(
            [g.line for g in wl.events],
            UsageProducer(s, batch_events=200),
            limits=Limits(s.max_event_bytes, s.max_event_age, s.max_clock_skew),
            meters=load_meters(str(s.catalog)),
            now=lambda: CLOCK,
            passthrough_invalid=True,
        )
        assert summary.delivery.failed == 0

        def settled() -> bool:
            worker, sink = scrape(s, "worker"), scrape(s, "sink")
            rows = by_label(sink, "railyard_rows_landed_total", "table")
            return (
                worker.get(("railyard_events_received_total", ()), 0) >= len(wl.events)
                and rows.get("usage_events_raw", 0) >= len(unique)
                and rows.get("dead_letters_raw", 0) >= sum(defects.values())
            )

        pipeline.wait_for(settled, what="the counters to reach the workload")
        worker, sink = scrape(s, "worker"), scrape(s, "sink")

        assert worker[("railyard_events_accepted_total", ())] == len(unique)
        assert worker[("railyard_events_deduplicated_total", ())] == duplicates
        dead = by_label(worker, "railyard_events_dead_lettered_total", "reason", stage="ingest")
        assert Counter({k: int(v) for k, v in dead.items() if v}) == defects
        assert worker[("railyard_events_received_total", ())] == len(wl.events)

        parked_topic = topics.topic_name(s, topics.USAGE_UNATTRIBUTED)
        parked = {k for k, v in read_topic(s, parked_topic) if v is not None}
        assert worker[("railyard_events_parked_total", ())] == len(parked)

        rows = by_label(sink, "railyard_rows_landed_total", "table")
        assert rows["usage_events_raw"] == len(unique)
        assert rows["dead_letters_raw"] == sum(defects.values())
        inserts = by_label(sink, "railyard_insert_duration_seconds_count", "table")
        assert inserts["usage_events_raw"] >= 1

        accepted_topic = topics.topic_name(s, topics.USAGE_ACCEPTED)

        def caught_up() -> bool:
            lag = by_label(
                scrape(s, "sink"),
                "railyard_consumer_lag_messages",
                "partition",
                topic=accepted_topic,
            )
            return bool(lag) and not any(lag.values())

        pipeline.wait_for(caught_up, timeout=30, what="the sink's lag on usage.accepted to be 0")
        usage_topic = topics.topic_name(s, topics.USAGE)

        def worker_caught_up() -> bool:
            lag = by_label(
                scrape(s, "worker"),
                "railyard_consumer_lag_messages",
                "partition",
                topic=usage_topic,
            )
            return len(lag) == s.usage_partitions and not any(lag.values())

        pipeline.wait_for(worker_caught_up, timeout=30, what="the worker's lag on usage to be 0")

        # Event-time progress: no stage is ahead of the newest event, and freshness is the
        # process clock (CLOCK and on) minus the watermark, so at least CLOCK - newest.
        def progress(stage: str) -> dict[str, float]:
            samples = scrape(s, "worker")
            return by_label(
                samples, "railyard_watermark_timestamp_seconds", "partition", stage=stage
            )

        for stage in ("window", "rate"):
            pipeline.wait_for(
                lambda stage=stage: bool(progress(stage)), timeout=30, what=f"{stage} watermark"
            )
        worker = scrape(s, "worker")
        for stage in ("window", "rate"):
            marks = by_label(
                worker, "railyard_watermark_timestamp_seconds", "partition", stage=stage
            )
            fresh = by_label(worker, "railyard_freshness_seconds", "partition", stage=stage)
            assert set(marks) == set(fresh), stage
            for partition, mark in marks.items():
                assert mark <= newest.timestamp(), (stage, partition)
                assert fresh[partition] >= CLOCK.timestamp() - mark, (stage, partition)

        # Closing the month issues invoices: the counter per rail equals the invoices topic.
        request_close(s, CLOCK.strftime("%Y-%m"))
        invoices_topic = topics.topic_name(s, topics.INVOICES)

        def issued_as_counted() -> bool:
            on_topic = Counter(decode_invoice(v).rail for _, v in read_topic(s, invoices_topic))
            counted = by_label(scrape(s, "worker"), "railyard_invoices_issued_total", "rail")
            return bool(on_topic) and Counter({r: int(n) for r, n in counted.items()}) == on_topic

        pipeline.wait_for(issued_as_counted, timeout=60, what="issued invoices, counted per rail")
    finally:
        pipeline.stop()
