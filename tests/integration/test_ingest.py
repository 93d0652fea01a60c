"""Ingest against the real broker and the real ClickHouse engine: nothing lost, nothing doubled."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import fastavro
import pytest
from confluent_kafka import Producer

from connectors.clickhouse.analyst import query
from connectors.clickhouse.migrate import STREAMING_TABLES
from connectors.files import load_meters
from connectors.kafka import topics
from connectors.kafka.producer import ProduceSummary, UsageProducer, produce_lines
from streams.domain.usage import UsageEvent
from streams.domain.validation import Limits
from streams.domain.workload import Defect, Workload, WorkloadSpec, generate
from streams.settings import Settings
from streams.wire.codec import (
    EVENT_VERSIONS,
    SINGLE_OBJECT_MAGIC,
    UsageCodec,
    batch_schema,
    decode_dead_letter,
)
from streams.wire.codec import schema_fingerprint as fp
from tests.integration.conftest import namespace
from tests.integration.harness import Pipeline, read_topic

pytestmark = pytest.mark.integration

EXPECTED_REASON = {
    Defect.NEGATIVE_VALUE: "negative_value",
    Defect.NON_NUMERIC_VALUE: "non_numeric_value",
    Defect.MISSING_FIELD: "missing_field",
    Defect.ABSURD_TIME: "timestamp_out_of_range",
    Defect.OVERSIZED: "oversized_payload",
    Defect.MALFORMED_JSON: "malformed_payload",
}
GARBAGE = {
    b"\x00\x00\x00\x00\x07abc": "unknown_schema",  # Confluent framing, no registry set
    b"\xc3\x01" + bytes(8) + b"\x02": "unknown_schema",  # unknown fingerprint
    b"\xff\xfe noise": "malformed_payload",
}


TRICKY_LINES = {
    b'{"specversion": "1.0", "id": "t-1", "source": "s", "type": "ai.tokens", "subject": "x",'
    b' "time": "2026-01-01T00:00:00Z", "data": {"tokens": 1, "model": "gpt-\xff"}}': (
        "malformed_payload"  # not UTF-8: dead-lettered with these very bytes
    ),
    b'{"specversion": "1.0", "id": "t-2", "id": "t-3", "source": "s", "type": "ai.tokens",'
    b' "subject": "x", "time": "2026-01-01T00:00:00Z", "data": {"tokens": 1}}': (
        "malformed_payload"  # a key given twice
    ),
    b'{"specversion": "0.3", "id": "t-4", "source": "s", "type": "ai.tokens", "subject": "x",'
    b' "time": "2026-01-01T00:00:00Z", "data": {"tokens": 1}}': "invalid_field",
}


def workload(events: int, seed: int, **rates: float) -> Workload:
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    return generate(
        WorkloadSpec(
            seed=seed, customers=8, events=events, start=day, duration=timedelta(days=1), **rates
        )
    )


def valid_events(wl: Workload) -> dict[str, dict[str, object]]:
    """id -> the CloudEvent, for every distinct valid event (the ground truth)."""
    return {g.event["id"]: g.event for g in wl.events if g.valid and g.event is not None}


def publish(
    settings: Settings, lines: list[str] | list[bytes], passthrough: bool = True
) -> ProduceSummary:
    s = settings
    return produce_lines(
        lines,
        UsageProducer(s, batch_events=200),
        limits=Limits(s.max_event_bytes, s.max_event_age, s.max_clock_skew),
        meters=load_meters(str(s.catalog)),
        passthrough_invalid=passthrough,
    )


def landed_ids(pipeline: Pipeline) -> set[str]:
    return {row[0] for row in query(pipeline.settings, "SELECT id FROM usage_events").rows}


def test_exactly_the_valid_unique_events_land_and_the_bad_ones_are_dead_lettered(
    kafka: Settings, tmp_path: object
) -> None:
    settings = namespace(kafka, tmp_path / "home", max_message_bytes=100_000)  # type: ignore[operator]
    pipeline = Pipeline(settings)
    wl = workload(3000, seed=21, duplicate_rate=0.1, invalid_rate=0.06)
    truth = valid_events(wl)
    bad = Counter(EXPECTED_REASON[g.defect] for g in wl.events if g.defect is not None)
    bad.update(GARBAGE.values())
    bad["oversized_payload"] += 2  # two whole messages over max_message_bytes
    bad.update(TRICKY_LINES.values())
    too_big = b'{"id": "' + b"x" * 2_500_000 + b'"}'  # over any message: reported, not sent
    lines = [g.line.encode() for g in wl.events] + list(TRICKY_LINES) + [too_big]
    try:
        pipeline.start()
        summary = publish(settings, lines)
        raw = UsageProducer(settings)
        for payload in GARBAGE:
            raw.send_raw(payload, b"third-party")
        raw.send_raw(b"{" + b" " * 150_000 + b"}", b"third-party")
        huge = b"{" + b"\t" * 600_000 + b"}"  # its dead letter keeps a part, and its digest
        raw.send_raw(huge, b"third-party")
        raw.flush()
        assert summary.delivery.failed == 0
        assert summary.sent + len(summary.rejected) == len(lines)
        [(number, not_sent)] = [(n, r) for n, r in summary.rejected if n == len(lines)]
        assert not_sent.reason == "oversized_payload" and "not published" in not_sent.detail

        pipeline.wait_for(
            lambda: (
                pipeline.count("SELECT count() FROM usage_events") >= len(truth)
                and pipeline.count("SELECT count() FROM dead_letters") >= sum(bad.values())
            ),
            what="every event to land",
        )
        assert landed_ids(pipeline) == set(truth)
        assert pipeline.count("SELECT count() FROM usage_events") == len(truth)

        # Quantities are exact decimals, equal to what the producer sent.
        rows = query(settings, "SELECT id, values, dimensions FROM usage_events").rows
        for event_id, values, dimensions in rows:
            sent = truth[event_id]["data"]
            assert {k: Decimal(v) for k, v in values.items()} == {
                k: Decimal(str(v)) for k, v in sent.items() if not isinstance(v, str)
            }
            assert dimensions == {k: v for k, v in sent.items() if isinstance(v, str)}

        letters = [
            decode_dead_letter(v)
            for _, v in read_topic(settings, topics.topic_name(settings, topics.USAGE_DLQ))
        ]
        assert Counter(d["reason"] for d in letters) == bad
        bad_lines = {g.line.encode() for g in wl.events if g.defect is not None}
        bad_lines |= set(TRICKY_LINES)  # the line that is not UTF-8 too, as it was
        originals = {d["original"] for d in letters}
        assert bad_lines <= originals, "every bad line is kept byte for byte"
        assert all(d["detail"] and d["stage"] == "ingest" for d in letters)
        [cut] = [d for d in letters if hashlib.sha256(huge).hexdigest() in d["detail"]]
        assert cut["original"] == huge[: len(cut["original"])] and len(cut["original"]) < 300_000
        table = dict(query(settings, "SELECT reason, records FROM dead_letters_by_reason").rows)
        assert Counter({k: int(v) for k, v in table.items()}) == bad
    finally:
        pipeline.stop()


def test_a_restarted_worker_still_drops_duplicates_it_saw_before(pipeline: Pipeline) -> None:
    wl = workload(2000, seed=5)
    truth = valid_events(wl)
    pipeline.start()
    publish(pipeline.settings, [g.line for g in wl.events])
    pipeline.wait_for(lambda: pipeline.count("SELECT count() FROM usage_events") >= len(truth))
    pipeline.start(
        "worker"
    )  # stops the running worker first  # fresh process: its memory of ids must come from Kafka
    publish(pipeline.settings, [g.line for g in wl.events])  # the whole history again
    sentinel = workload(50, seed=6)
    publish(pipeline.settings, [g.line for g in sentinel.events])
    expected = len(truth) + len(valid_events(sentinel))
    pipeline.wait_for(lambda: pipeline.count("SELECT count() FROM usage_events") >= expected)
    assert pipeline.count("SELECT count() FROM usage_events") == expected
    assert pipeline.count("SELECT count() FROM usage_events_raw") == expected, (
        "re-sent events were dropped by the stream, not merely collapsed by ClickHouse"
    )
    assert "recovered" in pipeline.procs["worker"].log_tail(400)


def test_sigkill_of_worker_and_sink_mid_stream_loses_and_doubles_nothing(
    pipeline: Pipeline,
) -> None:
    wl = workload(40_000, seed=99, duplicate_rate=0.05, invalid_rate=0.01)
    truth = valid_events(wl)
    lines = [g.line for g in wl.events]
    pipeline.start()
    publish(pipeline.settings, lines[:20_000])
    pipeline.wait_for(lambda: pipeline.count("SELECT count() FROM usage_events") > 2000)
    pipeline.kill("worker", "sink")
    killed_at = pipeline.count("SELECT count() FROM usage_events")  # sink is down: opens the store
    assert killed_at < len(truth), "the kill happened mid-stream"

    publish(pipeline.settings, lines[20_000:])  # producers keep going while the workers are down
    pipeline.start("sink", "worker")
    pipeline.wait_for(lambda: pipeline.count("SELECT count() FROM usage_events") > killed_at + 2000)
    pipeline.kill("worker")  # and once more, the worker alone
    pipeline.start("worker")
    pipeline.wait_for(
        lambda: pipeline.count("SELECT count() FROM usage_events") >= len(truth), timeout=240
    )
    assert landed_ids(pipeline) == set(truth)
    assert pipeline.count("SELECT count() FROM usage_events") == len(truth)
    assert pipeline.count("SELECT uniqExact(id) FROM usage_events_raw") == len(truth)


def test_railyard_sql_answers_while_the_pipeline_runs_and_after_it_stops(
    pipeline: Pipeline,
) -> None:
    wl = workload(500, seed=3)
    truth = valid_events(wl)
    pipeline.start()
    publish(pipeline.settings, [g.line for g in wl.events])
    pipeline.wait_for(lambda: pipeline.count("SELECT count() FROM usage_events") >= len(truth))

    def railyard_sql(sql: str) -> str:
        env = {**os.environ, **pipeline.settings.to_env()}
        done = subprocess.run(
            [sys.executable, "-m", "streams.cli", "sql", sql, "--format", "tsv"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert railyard_sql("SELECT count() FROM usage_events").split() == ["count()", str(len(truth))]
    refused = subprocess.run(
        [sys.executable, "-m", "streams.cli", "sql", "DROP TABLE usage_events_raw"],
        env={**os.environ, **pipeline.settings.to_env()},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode != 0 and "readonly" in (refused.stdout + refused.stderr).lower()
    pipeline.stop()
    assert railyard_sql("SELECT count() FROM usage_events").split() == ["count()", str(len(truth))]


def test_the_sink_lands_avro_bodies_as_they_are_and_dead_letters_a_corrupt_one(
    pipeline: Pipeline,
) -> None:
    """usage.accepted goes through the engine's Avro reader; a refused batch goes row by row.

    The store it lands in has its streaming tables tuned for frequent small parts.
    """
    codec = UsageCodec()
    now = datetime.now(UTC).replace(microsecond=123456)

    def event(i: int) -> UsageEvent:
        return UsageEvent(
            id=f"ev-{i}",
            source="sink-test",
            type="ai.tokens",
            subject=f"key-{i % 2}",
            time=now - timedelta(minutes=i),
            values={"tokens": Decimal("1.5") * i},
            dimensions={"model": "m1", "direction": "input"},
        )

    v1 = batch_schema(EVENT_VERSIONS[1])
    old = SINGLE_OBJECT_MAGIC + fp(v1)
    buf = io.BytesIO()
    fastavro.schemaless_writer(
        buf,
        fastavro.parse_schema(v1),
        {
            "events": [
                {
                    k: v
                    for k, v in event(9)._asdict().items()
                    if k not in ("dataschema", "specversion")
                }
            ]
        },
    )
    messages = [
        codec.encode_batch([event(i) for i in range(1, 6)]),  # a batch, as the worker forwards
        codec.encode_event(event(6)),  # a single event
        codec.encode_batch([event(7)])[:10] + b"\x06 corrupt",  # right fingerprint, bad body
        old + buf.getvalue(),  # an older schema version: decoded in Python
    ]
    topic = topics.topic_name(pipeline.settings, topics.USAGE_ACCEPTED)
    producer = Producer({"bootstrap.servers": pipeline.settings.kafka_bootstrap})
    for m in messages:
        producer.produce(topic, m, partition=0)
    assert producer.flush(30) == 0
    pipeline.start("sink")
    pipeline.wait_for(lambda: pipeline.count("SELECT count() FROM usage_events_raw") >= 7)
    pipeline.wait_for(lambda: pipeline.count("SELECT count() FROM dead_letters_raw") >= 1)
    rows = query(
        pipeline.settings,
        "SELECT id, kafka_offset, values['tokens'], dimensions['model'], time, specversion "
        "FROM usage_events_raw ORDER BY id",
    ).rows
    assert [(r[0], int(r[1])) for r in rows] == [
        *((f"ev-{i}", 0) for i in range(1, 6)),
        ("ev-6", 1),
        ("ev-9", 3),
    ]
    assert [Decimal(str(r[2])) for r in rows][:6] == [Decimal("1.5") * i for i in range(1, 7)]
    assert {r[3] for r in rows} == {"m1"} and {str(r[5]) for r in rows} == {"1.0"}
    assert str(rows[0][4]) == (now - timedelta(minutes=1)).replace(tzinfo=None).isoformat()
    letters = query(
        pipeline.settings, "SELECT stage, kafka_offset, reason FROM dead_letters_raw"
    ).rows
    assert [(r[0], int(r[1]), r[2]) for r in letters] == [("sink", 2, "malformed_payload")]
    # The store the sink prepared: every streaming table merges with the wider base.
    tuned = query(
        pipeline.settings,
        "SELECT name FROM system.tables WHERE database = currentDatabase() "
        "AND create_table_query LIKE '%merge_selector_base = 20%' ORDER BY name",
    ).rows
    assert [r[0] for r in tuned] == sorted(STREAMING_TABLES)
