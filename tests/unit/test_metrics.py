"""connectors/metrics.py: the exporter, the ingest counters' deltas and scrape-time freshness."""

from __future__ import annotations

import logging
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from connectors import metrics
from streams.settings import Settings

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_serve_writes_the_port_it_listens_on_and_answers_every_metric(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, metrics_port=0)
    port = metrics.serve(settings, "unit")
    assert port is not None and port > 0
    assert metrics.port_file(settings, "unit").read_text() == str(port)
    metrics.ROWS_LANDED.labels("unit_table").inc(3)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("railyard_rows_landed_total", (("table", "unit_table"),))] >= 3
    names = {family.name for family in text_string_to_metric_families(text)}
    declared = {
        "railyard_events_received",
        "railyard_events_accepted",
        "railyard_events_deduplicated",
        "railyard_events_parked",
        "railyard_events_dead_lettered",
        "railyard_consumer_lag_messages",
        "railyard_watermark_timestamp_seconds",
        "railyard_freshness_seconds",
        "railyard_rows_landed",
        "railyard_insert_duration_seconds",
        "railyard_invoices_issued",
        "railyard_invoices_delivered",
        "railyard_invoices_retried",
        "railyard_invoices_dead_lettered",
        "railyard_rail_circuit",
        "railyard_broker_connection_failures",
    }
    assert declared <= names, declared - names


def test_no_endpoint_when_the_port_is_minus_one(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, metrics_port=-1)
    assert metrics.serve(settings, "off") is None
    assert not metrics.port_file(settings, "off").exists()


def test_ingest_totals_are_exported_once_each() -> None:
    before = {
        "received": value("railyard_events_received_total"),
        "accepted": value("railyard_events_accepted_total"),
        "dups": value("railyard_events_deduplicated_total"),
        "neg": value(
            "railyard_events_dead_lettered_total", stage="ingest", reason="negative_value"
        ),
    }
    counts = {"accepted": 5, "duplicates": 2, "rejected.negative_value": 1, "messages": 4}
    exported: dict[str, int] = {}
    metrics.export_ingest_counts(counts, exported)
    metrics.export_ingest_counts(counts, exported)  # nothing new: nothing added
    counts["accepted"] += 3
    metrics.export_ingest_counts(counts, exported)
    assert value("railyard_events_accepted_total") - before["accepted"] == 8
    assert value("railyard_events_deduplicated_total") - before["dups"] == 2
    neg = value("railyard_events_dead_lettered_total", stage="ingest", reason="negative_value")
    assert neg - before["neg"] == 1
    assert value("railyard_events_received_total") - before["received"] == 11  # not messages


def test_freshness_is_the_clock_at_scrape_time_minus_the_watermark() -> None:
    now = [T0]
    progress = metrics.StageProgress("unit-stage", lambda: now[0])
    progress.advance(3, datetime(1970, 1, 1, tzinfo=UTC))  # no event time yet: no series
    assert (
        REGISTRY.get_sample_value(
            "railyard_freshness_seconds", {"stage": "unit-stage", "partition": "3"}
        )
        is None
    )
    progress.advance(3, T0 - timedelta(minutes=2))
    labels = {"stage": "unit-stage", "partition": "3"}
    assert (
        value("railyard_watermark_timestamp_seconds", **labels)
        == (T0 - timedelta(minutes=2)).timestamp()
    )
    assert value("railyard_freshness_seconds", **labels) == 120
    now[0] = T0 + timedelta(minutes=1)  # nothing moved: the view ages
    assert value("railyard_freshness_seconds", **labels) == 180
    progress.advance(3, T0)
    assert value("railyard_freshness_seconds", **labels) == 60
    progress.forget(3)
    assert REGISTRY.get_sample_value("railyard_freshness_seconds", labels) is None
    assert REGISTRY.get_sample_value("railyard_watermark_timestamp_seconds", labels) is None


def test_every_broker_connection_failure_is_counted_though_the_log_says_one() -> None:
    from connectors.kafka.client_logs import OnceWhileDown

    before = value("railyard_broker_connection_failures_total")
    t = [0.0]
    quiet = OnceWhileDown(clock=lambda: t[0])
    shown = []
    for i in range(5):
        t[0] = float(i)
        record = logging.LogRecord(
            "k", logging.ERROR, "", 0, "Connect to ipv4#1 failed: Connection refused", None, None
        )
        shown.append(quiet.filter(record))
    ok = logging.LogRecord("k", logging.INFO, "", 0, "joined the group", None, None)
    quiet.filter(ok)
    assert shown == [True, False, False, False, False]
    assert value("railyard_broker_connection_failures_total") - before == 5
