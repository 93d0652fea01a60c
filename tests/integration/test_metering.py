"""Metering against the real broker and engine: windows in ClickHouse equal a batch recomputation.

The oracle reads the raw accepted events back from ClickHouse, attributes them under
the final catalog and aggregates them from scratch (``batch_aggregate``). The stream's
window totals, with the late usage folded back in as adjustments, must equal it to the
last decimal, whatever happened on the way: duplicates, late events, a key that moves
between customers, subjects parked until a catalog change, and a SIGKILL.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from connectors.clickhouse.analyst import query
from connectors.files import load_catalog
from connectors.kafka.catalog_feed import publish_catalog
from streams.domain.catalog import Catalog, parse_catalog
from streams.domain.dedup import event_digest
from streams.domain.metering import contributions
from streams.domain.meters import Aggregation
from streams.domain.usage import UsageEvent
from streams.domain.windows import WindowKey, batch_aggregate
from streams.domain.workload import Workload, WorkloadSpec, generate
from streams.settings import Settings, Stage
from tests.integration.harness import Pipeline, railyard
from tests.integration.test_ingest import publish

pytestmark = pytest.mark.integration

START = datetime(2026, 11, 14, 6, tzinfo=UTC)  # spans the key that moves on 2026-11-15


def demo_workload(events: int) -> Workload:
    return generate(
        WorkloadSpec(
            seed=7,
            customers=12,
            events=events,
            start=START,
            duration=timedelta(days=2),
            duplicate_rate=0.05,
            late_rate=0.02,
            unknown_subject_rate=0.01,
            invalid_rate=0.005,
        )
    )


def catalog_claiming(settings: Settings, subjects: set[str], customer: str) -> Catalog:
    """The example catalog plus an assignment of ``subjects`` to ``customer``."""
    text = settings.catalog.read_text()
    entry = (
        f"  - customer: {customer}\n    effective_from: 2026-01-01T00:00:00Z\n"
        f"    subjects: [{', '.join(sorted(subjects))}]\n"
    )
    text = text.replace("\nsubjects:\n", "\nsubjects:\n" + entry, 1)
    catalog, problems = parse_catalog(text, "catalog-v2.yaml")
    assert catalog is not None, problems
    return catalog


def oracle(settings: Settings, catalog: Catalog) -> dict[WindowKey, Decimal]:
    rows = query(
        settings, "SELECT id, source, type, subject, time, values, dimensions FROM usage_events"
    ).rows
    pairs = []
    by_type = catalog.meter_index.by_type
    for event_id, source, type_, subject, time, values, dimensions in rows:
        when = datetime.fromisoformat(time).replace(tzinfo=UTC)
        event = UsageEvent(
            event_id,
            source,
            type_,
            subject,
            when,
            {k: Decimal(v) for k, v in values.items()},
            dimensions,
        )
        customer = catalog.customer_for(subject, when)
        assert customer is not None, f"{subject} has no customer under the final catalog"
        for c in contributions(event, by_type.get(type_, ()), event_digest(source, event_id)):
            pairs.append((customer, c))
    return batch_aggregate(pairs, settings.window_size)


def streamed(settings: Settings) -> dict[WindowKey, Decimal]:
    """Window totals plus late adjustments, combined the way the aggregation allows."""
    out: dict[WindowKey, Decimal] = {}
    aggregation: dict[str, str] = {}
    for customer, meter, agg, group, start, value in query(
        settings,
        "SELECT customer, meter, aggregation, group_values, window_start, toString(value) "
        "FROM usage_windows",
    ).rows:
        key = WindowKey(customer, meter, tuple(group), _instant(start))
        out[key] = Decimal(value)
        aggregation[meter] = agg
    late: dict[WindowKey, list[Decimal]] = defaultdict(list)
    for customer, meter, agg, group, start, value in query(
        settings,
        "SELECT customer, meter, aggregation, group_values, window_start, value FROM late_usage",
    ).rows:
        late[WindowKey(customer, meter, tuple(group), _instant(start))].append(Decimal(value))
        aggregation[meter] = agg
    for key, values in late.items():
        agg = Aggregation(aggregation[key.meter])
        current = [out[key]] if key in out else []
        if agg in (Aggregation.SUM, Aggregation.COUNT):
            out[key] = sum(current + values, Decimal(0))
        elif agg is Aggregation.MAX:
            out[key] = max(current + values)
        elif agg is Aggregation.MIN:
            out[key] = min(current + values)
        else:
            raise AssertionError(f"the demo catalog has no {agg} meter")
    return {k: v.quantize(Decimal("0.000000001")) for k, v in out.items()}


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_windows_equal_batch_recomputation_through_late_events_parking_and_a_crash(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    settings = pipeline.settings
    wl = demo_workload(12_000)
    strangers = {
        g.event["subject"] for g in wl.events if g.valid and g.customer is None and g.event
    }
    assert strangers, "the workload has subjects no customer claims yet"
    lines = [g.line for g in wl.events]

    pipeline.start()
    publish(settings, lines[:6000])
    pipeline.wait_for(lambda: pipeline.count("SELECT count() FROM usage_windows") > 50)
    pipeline.kill("worker")  # mid-stream: windows must be rebuilt, not double counted
    publish(settings, lines[6000:])
    pipeline.start("worker")

    accepted = len({g.event["id"] for g in wl.events if g.valid and g.event})
    pipeline.wait_for(
        lambda: pipeline.count("SELECT count() FROM usage_events") >= accepted, timeout=240
    )
    pipeline.wait_for(
        lambda: pipeline.count("SELECT sum(events) FROM unattributed_usage") > 0,
        what="strangers' usage to be parked",
    )
    parked = pipeline.count("SELECT sum(events) FROM unattributed_usage")

    # A catalog change claims the strangers: the parked usage is attributed, none is lost.
    v2 = catalog_claiming(settings, strangers, _first_customer(settings))
    publish_catalog(settings, v2)
    pipeline.wait_for(
        lambda: (
            pipeline.count("SELECT count() FROM unattributed_usage") == 0
            and pipeline.count("SELECT count() FROM usage_attributed") == accepted
        ),
        timeout=120,
        what="parked usage to be attributed after the catalog change",
    )
    assert parked > 0

    expected = oracle(settings, v2)
    assert len(expected) > 200, "enough windows for the comparison to mean something"

    def converged() -> bool:
        return streamed(settings) == expected

    pipeline.wait_for(converged, timeout=120, what="window totals to equal the recomputation")
    late = pipeline.count("SELECT count() FROM late_usage")
    corrections = pipeline.count("SELECT countIf(is_correction) FROM usage_windows")
    assert late > 0, "the workload's late events became adjustments"
    assert corrections > 0, "events within the lateness bound corrected their windows"
    report = railyard(
        settings,
        "usage",
        "--customer",
        _first_customer(settings),
        "--from",
        "2026-11-14",
        "--to",
        "2026-11-16",
    )
    assert "ai_tokens" in report and "2026-11-15" in report
    assert "nothing is parked" in railyard(settings, "unattributed")
    moved = pipeline.count(
        "SELECT uniqExact(customer) FROM usage_attributed WHERE subject = 'key_746aa50c7136b7bd'"
    )
    assert moved == 2, "the key that moved bills each customer for its own period"


def _first_customer(settings: Settings) -> str:
    from connectors.files import load_catalog

    return load_catalog(settings.catalog).customers[0].key


def ingest_assignment(settings: Settings) -> dict[str, set[int]]:
    """Member id -> the usage partitions it holds, for the ingest workers' consumer group."""
    from confluent_kafka.admin import AdminClient

    from connectors.kafka.topics import USAGE, topic_name

    group = f"{settings.topic_prefix}{settings.worker_id}"
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    described = admin.describe_consumer_groups([group])[group].result(timeout=10)
    usage = topic_name(settings, USAGE)
    return {
        m.member_id: {tp.partition for tp in m.assignment.topic_partitions if tp.topic == usage}
        for m in described.members
    }


def test_two_ingest_workers_share_the_usage_partitions_and_a_survivor_takes_over(
    pipeline: Pipeline,
) -> None:
    """The 2-core deployment the benchmark runs: ingest+attribute in two processes of one
    consumer group, windows in a third. Killing one ingest worker mid-stream moves its
    partitions to the other, and the windows still equal the batch recomputation."""
    settings = pipeline.settings
    ingest = settings.with_(stages={Stage.INGEST, Stage.ATTRIBUTE})
    window = settings.with_(stages={Stage.WINDOW}, worker_id=f"{settings.worker_id}-window")
    wl = generate(
        WorkloadSpec(
            seed=7,
            customers=12,
            events=8000,
            start=START,
            duration=timedelta(days=2),
            duplicate_rate=0.05,
            late_rate=0.02,
            invalid_rate=0.005,
        )
    )  # the example catalog's customers (seed 7), every subject claimed
    lines = [g.line for g in wl.events]
    accepted = len({g.event["id"] for g in wl.events if g.valid and g.event})

    pipeline.start("sink")
    for name, worker in (("ingest-a", ingest), ("ingest-b", ingest), ("window", window)):
        pipeline.start_worker(name, worker)

    def shared() -> bool:
        held = ingest_assignment(settings)
        partitions = set().union(*held.values()) if held else set()
        return (
            len(held) == 2
            and all(held.values())
            and partitions == set(range(settings.usage_partitions))
        )

    pipeline.wait_for(shared, timeout=90, what="both ingest workers to hold usage partitions")
    publish(settings, lines[:4000])
    pipeline.wait_for(lambda: pipeline.count("SELECT count() FROM usage_windows") > 50)
    pipeline.kill("ingest-a")  # its partitions move to ingest-b after the session timeout
    publish(settings, lines[4000:])

    pipeline.wait_for(
        lambda: pipeline.count("SELECT count() FROM usage_events") >= accepted, timeout=180
    )
    held = ingest_assignment(settings)
    assert len(held) == 1 and set().union(*held.values()) == set(
        range(settings.usage_partitions)
    ), f"the survivor holds every usage partition: {held}"
    pipeline.wait_for(
        lambda: pipeline.count("SELECT count() FROM usage_attributed") == accepted,
        what="every accepted event attributed once",
    )
    assert pipeline.count("SELECT count() FROM usage_events") == accepted

    catalog = load_catalog(settings.catalog)
    expected = oracle(settings, catalog)
    assert len(expected) > 100, "enough windows for the comparison to mean something"
    pipeline.wait_for(
        lambda: streamed(settings) == expected,
        timeout=120,
        what="window totals to equal the recomputation",
    )
