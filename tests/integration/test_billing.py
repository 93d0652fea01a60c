"""Rating and invoicing against the real broker and engine: the stream equals ``simulate``.

A month of usage for a few hundred customers spread over all eight rails, with
duplicates, invalid and late events, and a SIGKILL of the worker half-way. After the
operator closes the month, the invoices on the ``invoices.<rail>`` topics must equal
what ``railyard simulate`` prices from the same JSON lines, to the cent; each
customer gets exactly one, closing again issues nothing, and every invoice lands in
ClickHouse with its rail.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import avro.io
import avro.schema
import pytest

from connectors.files import load_catalog
from connectors.kafka import topics
from connectors.kafka.admin import group_lag, list_topics
from connectors.kafka.billing_commands import request_close
from streams.domain.invoice import Invoice
from streams.domain.rating.simulate import simulate
from streams.domain.validation import Limits
from streams.domain.workload import WorkloadSpec, generate
from streams.domain.workload.catalog import ALL_RAILS, billing_catalog_yaml
from streams.settings import Settings
from streams.wire.invoices import decode_invoice
from tests.integration.conftest import namespace
from tests.integration.harness import Pipeline, railyard, read_topic
from tests.integration.test_ingest import publish

pytestmark = pytest.mark.integration

MONTH = "2026-10"
START = datetime(2026, 10, 1, tzinfo=UTC)
CUSTOMERS = 240


SPEND = "SELECT customer, toString(total) FROM billing_spend WHERE period_start >= '2026-10-01'"


def settled(settings: Settings) -> bool:
    """Every stage has committed everything on its inputs: nothing is still on its way."""
    inputs = [
        topics.USAGE,
        topics.USAGE_ATTRIBUTED,
        topics.USAGE_WINDOWS,
        topics.USAGE_LATE,
        topics.BILLING_COMMANDS,
        topics.INVOICES,
    ]
    names = [topics.topic_name(settings, t) for t in inputs]
    return group_lag(settings, f"{settings.topic_prefix}{settings.worker_id}", names) == 0


def rail_invoices(settings: Settings) -> dict[str, Invoice]:
    """Every invoice on every ``invoices.<rail>`` topic, by id; re-sends must be identical."""
    prefix = topics.topic_name(settings, topics.RAIL_TOPIC_PREFIX)
    out: dict[str, Invoice] = {}
    raw: dict[str, bytes] = {}
    for name in list_topics(settings.kafka_bootstrap):
        if not name.startswith(prefix) or name[len(prefix) :] in ("status", "dlq"):
            continue
        for _key, value in read_topic(settings, name, timeout=5.0):
            invoice = decode_invoice(value)
            assert name == prefix + invoice.rail, f"{invoice.number} routed to {name}"
            assert raw.setdefault(invoice.id, value) == value, f"{invoice.id} re-sent changed"
            out[invoice.id] = invoice
    return out


def test_invoices_on_rail_topics_equal_simulate(kafka: Settings, tmp_path: Path) -> None:
    workload = generate(
        WorkloadSpec(
            seed=11,
            customers=CUSTOMERS,
            events=24_000,
            start=START,
            duration=timedelta(days=31),
            duplicate_rate=0.03,
            late_rate=0.01,
            invalid_rate=0.005,
        )
    )
    example = (Path(__file__).parents[2] / "deploy" / "catalog.example.yaml").read_text()
    catalog_file = tmp_path / "catalog.yaml"
    catalog_file.write_text(billing_catalog_yaml(example, workload.customers))
    catalog = load_catalog(catalog_file)
    settings = namespace(
        kafka,
        tmp_path / "home",
        catalog=catalog_file,
        max_event_age=timedelta(days=400),
        period_grace=timedelta(hours=6),
    )
    lines = [g.line for g in workload.events]
    pipeline = Pipeline(settings)
    try:
        pipeline.start("sink", "worker")
        half = len(lines) // 2
        publish(settings, lines[:half])
        pipeline.wait_for(
            lambda: pipeline.count("SELECT count() FROM usage_windows") > 500,
            what="windows before the kill",
        )
        pipeline.kill("worker")  # SIGKILL mid-stream: uncommitted work is redone
        pipeline.start("worker")
        publish(settings, lines[half:])
        valid = len({g.event["id"] for g in workload.events if g.valid and g.event})
        pipeline.wait_for(
            lambda: pipeline.count("SELECT count() FROM usage_events") >= valid,
            timeout=300,
            what="every event to land",
        )
        pipeline.wait_for(lambda: settled(settings), timeout=300, what="the stages to settle")

        limits = Limits(settings.max_event_bytes, settings.max_event_age, settings.max_clock_skew)
        result = simulate(catalog, lines, MONTH, datetime.now(UTC), limits=limits)
        oracle = result.invoices
        # While the period is open, the running spend of every customer with usage is what
        # closing the period now would bill.
        using = set(result.usage)
        totals = {i.customer: i.total for i in oracle if i.customer in using}
        assert len(totals) > CUSTOMERS // 2
        pipeline.wait_for(
            lambda: {c: Decimal(t) for c, t in pipeline_rows(settings, SPEND)} == totals,
            timeout=60,
            what="running spend equal to the oracle's totals",
        )

        request_close(settings, MONTH)
        subscribed = len(catalog.customers)
        pipeline.wait_for(
            lambda: len(rail_invoices(settings)) >= subscribed,
            timeout=180,
            what="an invoice per customer on the rail topics",
        )
        streamed = rail_invoices(settings)

        expected = {i.id: i for i in oracle}
        assert len(expected) == subscribed
        assert set(streamed) == set(expected)
        for invoice_id, invoice in expected.items():
            assert streamed[invoice_id] == invoice, difference(streamed[invoice_id], invoice)
        assert {i.rail for i in streamed.values()} == set(ALL_RAILS["self_service"]) | set(
            ALL_RAILS["enterprise"]
        )
        assert len({(i.customer, i.period_start) for i in streamed.values()}) == subscribed

        # Closing again issues nothing new.
        request_close(settings, MONTH)
        pipeline.wait_for(lambda: settled(settings), timeout=120, what="the second close")
        assert set(rail_invoices(settings)) == set(expected)

        # Every invoice lands in ClickHouse, with its rail, once.
        pipeline.wait_for(
            lambda: pipeline.count("SELECT count() FROM invoices") == subscribed,
            what="invoices in ClickHouse",
        )
        by_rail = dict(
            pipeline_rows(settings, "SELECT rail, sum(invoices) FROM revenue_by_rail GROUP BY rail")
        )
        assert sum(int(v) for v in by_rail.values()) == subscribed
        assert len(by_rail) == 8

        # A consumer no one here wrote reads every topic from the published schemas alone.
        bundle = tmp_path / "schemas"
        railyard(settings, "schemas", str(bundle))
        read = foreign_read(settings, bundle)
        bare = {name.removeprefix(settings.topic_prefix) for name in read}
        assert {
            topics.USAGE,
            topics.USAGE_ACCEPTED,
            topics.USAGE_DLQ,
            topics.USAGE_ATTRIBUTED,
            topics.USAGE_WINDOWS,
            topics.USAGE_LATE,
            topics.BILLING_BOOK,
            topics.BILLING_SPEND,
            topics.BILLING_COMMANDS,
            topics.INVOICES,
        } <= bare
        assert len([t for t in bare if t.startswith(topics.RAIL_TOPIC_PREFIX)]) >= 8
    finally:
        pipeline.stop()


NOT_AVRO = {topics.CATALOG: "the catalog as JSON", topics.USAGE_DEDUP_LOG: "packed digests"}
"""Topics whose values are not Avro records (docs/consumers.md says what they hold)."""


def foreign_read(settings: Settings, bundle: Path) -> dict[str, int]:
    """Messages per topic decoded with the Apache ``avro`` library and the exported
    bundle alone (index.json: fingerprint -> self-contained schema); fails on any other."""
    index = json.loads((bundle / "index.json").read_text())
    parsed = {
        key: avro.schema.parse((bundle / entry["file"]).read_text()) for key, entry in index.items()
    }
    counts: dict[str, int] = {}
    for name in list_topics(settings.kafka_bootstrap):
        bare = name.removeprefix(settings.topic_prefix)
        if not name.startswith(settings.topic_prefix) or bare in NOT_AVRO:
            continue
        for _key, value in read_topic(settings, name, timeout=5.0):
            if value is None:  # a compacted topic's tombstone
                continue
            if bare == topics.USAGE and value[:2] != b"\xc3\x01":
                continue  # a producer's CloudEvents JSON, or its bad input: not ours to publish
            assert value[:2] == b"\xc3\x01", f"{name}: not single-object Avro"
            schema = parsed[value[2:10].hex()]
            body = io.BytesIO(value[10:])
            avro.io.DatumReader(schema).read(avro.io.BinaryDecoder(body))
            assert body.tell() == len(value) - 10, f"{name}: bytes left after the record"
            counts[name] = counts.get(name, 0) + 1
    return counts


def difference(got: Invoice, want: Invoice) -> str:
    """The first lines that differ, readable: a whole-invoice repr is too long to help."""
    pairs = list(zip(got.lines, want.lines, strict=False))
    for g, w in pairs:
        if g != w:
            return f"{want.number}: stream {g}\n  simulate {w}"
    return f"{want.number}: {len(got.lines)} lines vs {len(want.lines)}; totals {got.total} vs {want.total}"


def pipeline_rows(settings: Settings, sql: str) -> list[tuple[object, ...]]:
    from connectors.clickhouse.analyst import query

    return [tuple(r) for r in query(settings, sql).rows]
