"""Billing truth against the real broker and engine: the invoice is the period's real usage.

One meter per aggregation, a subject that moves between customers mid-period, re-sent
duplicates, part of the month produced after the rest (so it arrives past the lateness
bound), a SIGKILL, and a restart after the rate stage's input topics lost their old
records. Whatever the window size, each invoice line's quantity must equal the
aggregation over the period's events computed here by hand from the raw events (the
rule in docs/rating.md, "What a meter bills"), and the whole invoice must equal
``railyard simulate``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from connectors.clickhouse.analyst import query
from connectors.files import load_catalog
from connectors.kafka import topics
from connectors.kafka.billing_commands import request_close
from connectors.kafka.partitioner import partition_for
from connectors.kafka.replay import read_partition
from streams.domain.catalog import Catalog
from streams.domain.cloudevents import to_json
from streams.domain.dedup import event_digest
from streams.domain.invoice import Invoice, LineKind
from streams.domain.rating.simulate import simulate
from streams.domain.usage import UsageEvent
from streams.domain.validation import Limits
from streams.settings import Settings
from streams.wire.book import live_entries
from tests.integration.conftest import namespace
from tests.integration.harness import Pipeline
from tests.integration.test_billing import rail_invoices, settled
from tests.integration.test_ingest import publish

pytestmark = pytest.mark.integration

MONTH = "2026-11"
START = datetime(2026, 11, 1, tzinfo=UTC)
MOVE = datetime(2026, 11, 16, tzinfo=UTC)
AS_OF = datetime(2026, 12, 2, tzinfo=UTC)
AGGREGATIONS = {
    "m_sum": "SUM",
    "m_count": "COUNT",
    "m_min": "MIN",
    "m_max": "MAX",
    "m_avg": "AVG",
    "m_seats": "UNIQUE_COUNT",
    "m_latest": "LATEST",
}


def _meter(key: str, aggregation: str) -> str:
    prop = {"COUNT": "", "UNIQUE_COUNT": ", value_property: user"}.get(
        aggregation, ", value_property: v"
    )
    return f"  - {{key: {key}, event_type: probe, aggregation: {aggregation}, group_by: [g]{prop}}}"


SUBJECTS = (*(f"key_a{i}" for i in range(6)), *(f"key_b{i}" for i in range(6)), "key_mover")
"""Enough subjects that every usage partition carries traffic: event time (the watermark)
advances only when every upstream partition has moved on."""
OWN = {x: ", ".join(s for s in SUBJECTS if s.startswith(f"key_{x}")) for x in "ab"}
MOVED = f"{MOVE:%Y-%m-%dT%H:%M:%SZ}"
CATALOG = "\n".join(
    [
        "rounding: half_even",
        "meters:",
        *(_meter(k, a) for k, a in AGGREGATIONS.items()),
        "customers:",
        "  - {key: alpha, name: Alpha, billing: {currency: EUR, anchor_day: 1, rail: stripe, account: cus_a, segment: self_service, region: eu-west-1}}",
        "  - {key: beta, name: Beta, billing: {currency: EUR, anchor_day: 1, rail: stripe, account: cus_b, segment: self_service, region: eu-west-1}}",
        "subjects:",
        f"  - {{customer: alpha, effective_from: 2026-01-01T00:00:00Z, subjects: [{OWN['a']}]}}",
        f"  - {{customer: beta, effective_from: 2026-01-01T00:00:00Z, subjects: [{OWN['b']}]}}",
        f"  - {{customer: alpha, effective_from: 2026-01-01T00:00:00Z, effective_to: {MOVED}, subject: key_mover}}",
        f"  - {{customer: beta, effective_from: {MOVED}, subject: key_mover}}",
        "plans:",
        "  - key: probe-eur",
        "    name: Probe",
        "    currency: EUR",
        "    rate_card:",
        *(f'      - {{meter: {k}, model: per_unit, unit_amount: "1"}}' for k in AGGREGATIONS),
        "subscriptions:",
        "  - {customer: alpha, plan: probe-eur, effective_from: 2026-01-01T00:00:00Z}",
        "  - {customer: beta, plan: probe-eur, effective_from: 2026-01-01T00:00:00Z}",
        "",
    ]
)


def month_of_events(seed: int) -> list[UsageEvent]:
    """About 1,400 probe events over November (plus 60 re-sent), deterministic."""
    rng = random.Random(seed)
    events: list[UsageEvent] = []
    for n in range(1400):
        events.append(
            UsageEvent(
                id=f"probe-{n}",
                source="probe",
                type="probe",
                subject=rng.choice(SUBJECTS),
                time=START + timedelta(seconds=rng.randrange(30 * 86400)),
                values={"v": Decimal(rng.randrange(1, 100_000)) / 100},
                dimensions={"user": f"u{rng.randrange(40)}", "g": rng.choice("xy")},
            )
        )
    return events + rng.sample(events, 60)  # re-sent: same source and id


def owner(subject: str, at: datetime) -> str:
    if subject == "key_mover":
        return "alpha" if at < MOVE else "beta"
    return "alpha" if subject.startswith("key_a") else "beta"


def by_hand(events: list[UsageEvent]) -> dict[tuple[str, str], Decimal]:
    """Each customer's quantity per meter: per group, the aggregation over all of the
    period's distinct events; then the groups added up (docs/rating.md)."""
    unique = {(e.source, e.id): e for e in events}
    groups: dict[tuple[str, str], list[UsageEvent]] = {}
    for e in unique.values():
        groups.setdefault((owner(e.subject, e.time), e.dimensions["g"]), []).append(e)
    out: dict[tuple[str, str], Decimal] = {}
    for (customer, _), rows in groups.items():
        v = [r.values["v"] for r in rows]
        mean = Fraction(sum(v, Decimal(0))) / len(v)
        each = {
            "m_sum": sum(v, Decimal(0)),
            "m_count": Decimal(len(rows)),
            "m_min": min(v),
            "m_max": max(v),
            "m_avg": Decimal(round(mean * 10**9)) / 10**9,
            "m_seats": Decimal(len({r.dimensions["user"] for r in rows})),
            # times are whole seconds; a tie would go to the greater digest
            "m_latest": max(rows, key=lambda r: (r.time, event_digest(r.source, r.id))).values["v"],
        }
        for meter, q in each.items():
            out[(customer, meter)] = out.get((customer, meter), Decimal(0)) + q
    return out


def setup(kafka: Settings, tmp_path: Path, **overrides: object) -> tuple[Settings, Catalog]:
    catalog_file = tmp_path / "catalog.yaml"
    catalog_file.write_text(CATALOG)
    settings = namespace(
        kafka,
        tmp_path / "home",
        catalog=catalog_file,
        max_event_age=timedelta(days=400),
        period_grace=timedelta(hours=1),
        **overrides,
    )
    return settings, load_catalog(catalog_file)


def lines_of(events: list[UsageEvent]) -> list[str]:
    return [to_json(e) for e in events]


def close_and_collect(settings: Settings, pipeline: Pipeline, count: int) -> dict[str, Invoice]:
    """Close the month once every stage has caught up (a close before late usage reaches
    the rate stage rightly bills it as an adjustment on the next invoice instead)."""
    pipeline.wait_for(lambda: settled(settings), timeout=180, what="the stages to settle")
    request_close(settings, MONTH)
    pipeline.wait_for(
        lambda: len(rail_invoices(settings)) >= count, timeout=180, what="the month's invoices"
    )
    return {i.customer: i for i in rail_invoices(settings).values() if i.period_start == START}


def assert_billed_by_the_rule(
    invoices: dict[str, Invoice], events: list[UsageEvent], catalog: Catalog
) -> None:
    expected = by_hand(events)
    for customer in ("alpha", "beta"):
        billed = {
            ln.meter: ln.quantity for ln in invoices[customer].lines if ln.kind is LineKind.USAGE
        }
        want = {m: expected[(customer, m)] for m in AGGREGATIONS if (customer, m) in expected}
        assert billed == want, customer
    limits = Limits(max_age=timedelta(days=400))
    oracle = simulate(catalog, lines_of(events), MONTH, AS_OF, limits=limits)
    assert {i.customer: i for i in oracle.invoices} == invoices


def wait_landed(pipeline: Pipeline, n: int) -> None:
    pipeline.wait_for(
        lambda: pipeline.count("SELECT count() FROM usage_events") >= n,
        timeout=180,
        what=f"{n} events to land",
    )


def spend_visible(pipeline: Pipeline) -> Callable[[], bool]:
    return lambda: pipeline.count("SELECT count() FROM billing_spend") >= 2


@pytest.mark.parametrize(
    ("window_size", "second_half_first", "kill"),
    [("minute", False, False), ("hour", True, True), ("day", True, False)],
)
def test_every_aggregation_bills_the_periods_events_whatever_the_windows(
    kafka: Settings, tmp_path: Path, window_size: str, second_half_first: bool, kill: bool
) -> None:
    """Minute windows in order; hour and day windows with the second half of the month
    produced first, so the first half arrives past the lateness bound; the same invoices."""
    settings, catalog = setup(kafka, tmp_path, window_size=window_size)
    events = month_of_events(seed=14)
    first = [e for e in events if e.time < MOVE]
    second = [e for e in events if e.time >= MOVE]
    batches = [second, first] if second_half_first else [first, second]
    distinct = len({e.id for e in events})
    pipeline = Pipeline(settings)
    try:
        pipeline.start("sink", "worker")
        publish(settings, lines_of(batches[0]))
        wait_landed(pipeline, len({e.id for e in batches[0]}))
        pipeline.wait_for(spend_visible(pipeline), what="running spend")
        if kill:
            pipeline.kill("worker")  # SIGKILL: the replay must neither lose nor double usage
            pipeline.start("worker")
        publish(settings, lines_of(batches[1]))
        wait_landed(pipeline, distinct)
        if second_half_first:
            pipeline.wait_for(
                lambda: pipeline.count("SELECT count() FROM late_usage") > 0,
                what="usage past the lateness bound",
            )
        if window_size == "day":  # records the rate stage cannot read: dead-lettered, not fatal
            poison(settings, [topics.USAGE_WINDOWS, topics.USAGE_LATE])
        invoices = close_and_collect(settings, pipeline, 2)
        assert_billed_by_the_rule(invoices, events, catalog)
        if window_size == "day":
            rate_dead = "SELECT count() FROM dead_letters WHERE stage = 'rate'"
            pipeline.wait_for(lambda: pipeline.count(rate_dead) == 2, what="2 rate dead letters")
            reasons = query(
                settings, "SELECT DISTINCT reason FROM dead_letters WHERE stage = 'rate'"
            )
            assert [tuple(r) for r in reasons.rows] == [("unreadable_record",)]
    finally:
        pipeline.stop()


def test_a_restart_after_the_inputs_expired_bills_the_same(kafka: Settings, tmp_path: Path) -> None:
    """The rate stage restarts after every record of its input topics is gone (retention
    cut to a second and the records deleted): its book comes back from billing.book. (A
    crash between checkpoints replays the seconds after the last mark: the hour case above.)"""
    settings, catalog = setup(kafka, tmp_path)
    events = month_of_events(seed=3)
    pipeline = Pipeline(settings)
    try:
        pipeline.start("sink", "worker")
        publish(settings, lines_of(events))
        wait_landed(pipeline, len({e.id for e in events}))
        pipeline.wait_for(spend_visible(pipeline), what="running spend")
        pipeline.wait_for(lambda: checkpointed(settings), what="the book's last checkpoint")
        before = dict(query(settings, "SELECT customer, toString(total) FROM billing_spend").rows)
        pipeline.stop()  # a clean stop commits every offset
        pipeline.procs.clear()
        expire(settings, [topics.USAGE_WINDOWS, topics.USAGE_LATE, topics.BILLING_COMMANDS])
        pipeline.start("sink", "worker")
        invoices = close_and_collect(settings, pipeline, 2)
        assert_billed_by_the_rule(invoices, events, catalog)
        assert {c: str(i.total) for c, i in invoices.items()} == before
    finally:
        pipeline.stop()


def checkpointed(settings: Settings) -> bool:
    """Every partition's billing.book mark covers all of usage.windows and usage.late: what
    the book knows no longer needs them (RAILYARD_BOOK_CHECKPOINT after input stops)."""
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "marks"})
    try:
        for p in range(settings.usage_partitions):
            book = topics.topic_name(settings, topics.BILLING_BOOK)
            _, mark = live_entries(
                (m.key() or b"", m.value())
                for m in read_partition(settings.kafka_bootstrap, book, p)
            )
            for base, covered in (
                (topics.USAGE_WINDOWS, mark.windows_offset),
                (topics.USAGE_LATE, mark.late_offset),
            ):
                name = topics.topic_name(settings, base)
                _, high = consumer.get_watermark_offsets(TopicPartition(name, p), timeout=30)
                if covered < high:
                    return False
        return True
    finally:
        consumer.close()


def poison(settings: Settings, bases: list[str]) -> None:
    """A record no codec reads, on each topic, on the partition both customers are on."""
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    for base in bases:
        partition = partition_for(b"alpha", settings.usage_partitions)
        producer.produce(
            topics.topic_name(settings, base), b"\xc3\x01not a record", partition=partition
        )
    assert producer.flush(30) == 0


def expire(settings: Settings, bases: list[str]) -> None:
    """What retention does to old segments, now: retention cut to a second, and every record
    up to the end deleted (the broker's retention check would take minutes to get there)."""
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    names = [topics.topic_name(settings, b) for b in bases]
    short = [
        ConfigEntry(name, "1000", incremental_operation=AlterConfigOpType.SET)
        for name in ("retention.ms", "segment.ms")
    ]
    resources = [
        ConfigResource(ConfigResource.Type.TOPIC, n, incremental_configs=short) for n in names
    ]
    for f in admin.incremental_alter_configs(resources).values():
        f.result(timeout=30)
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "expire"})
    try:
        ends = [
            TopicPartition(
                name, p, consumer.get_watermark_offsets(TopicPartition(name, p), timeout=30)[1]
            )
            for name in names
            for p in range(settings.usage_partitions)
        ]
        for f in admin.delete_records(ends).values():
            f.result(timeout=30)
        for tp in ends:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(tp.topic, tp.partition), timeout=30
            )
            assert low == high, f"{tp.topic}[{tp.partition}] still holds records"
    finally:
        consumer.close()
