"""The published bundle: every fingerprint our codecs write is in it, and each schema in
it decodes our bytes alone, with the Apache ``avro`` library (not the fastavro we use)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import avro.io
import avro.schema
import pytest

from streams.domain.rejections import Reason, Rejection
from streams.domain.usage import UsageEvent
from streams.wire import records
from streams.wire.codec import HEADER_SIZE, UsageCodec, encode_dead_letter, fingerprint_of
from streams.wire.contributions import ContributionsWriter
from streams.wire.records import RecordCodec
from streams.wire.schemas import published_schemas

BUNDLE = {p.fingerprint: p for p in published_schemas()}
EVENT = UsageEvent(
    id="e-1",
    source="api",
    type="ai.tokens",
    subject="ws-1",
    time=datetime(2026, 2, 28, 23, 59, 59, 999_999, tzinfo=UTC),
    values={"tokens": Decimal("12.5")},
    dimensions={"model": "m"},
)


def foreign_decode(payload: bytes) -> Any:
    """What a consumer with only the bundle and Apache avro reads from one message."""
    published = BUNDLE[fingerprint_of(payload)]
    schema = avro.schema.parse(json.dumps(published.schema))
    body = io.BytesIO(payload[HEADER_SIZE:])
    value = avro.io.DatumReader(schema).read(avro.io.BinaryDecoder(body))
    assert body.tell() == len(payload) - HEADER_SIZE, "the schema reads the whole body"
    return value


def test_every_codec_writes_a_published_fingerprint() -> None:
    codecs = [c for c in vars(records).values() if isinstance(c, RecordCodec)]
    assert len(codecs) >= 10
    for codec in codecs:
        assert codec.header[2:HEADER_SIZE] in BUNDLE, codec.name
    usage = UsageCodec()
    assert fingerprint_of(usage.encode_event(EVENT)) in BUNDLE
    assert fingerprint_of(usage.encode_batch([EVENT, EVENT])) in BUNDLE
    assert len(BUNDLE) == len(published_schemas()), "one schema per fingerprint"


@pytest.mark.parametrize("published", published_schemas(), ids=lambda p: p.contract)
def test_each_schema_stands_alone(published: Any) -> None:
    text = json.dumps(published.schema)
    assert 'dev.railyard.usage.UsageEvent"' not in text.replace('"name": "UsageEvent"', "")
    avro.schema.parse(text)  # raises on a name it does not define


def test_usage_and_dead_letters_decode_with_apache_avro() -> None:
    usage = UsageCodec()
    [one] = [foreign_decode(usage.encode_event(EVENT))]
    assert (one["id"], one["subject"]) == ("e-1", "ws-1")
    batch = foreign_decode(usage.encode_batch([EVENT, EVENT._replace(id="e-2")]))
    assert [e["id"] for e in batch["events"]] == ["e-1", "e-2"]
    assert batch["events"][0]["values"]["tokens"] == Decimal("12.5")
    letter = encode_dead_letter(
        Rejection(Reason.NEGATIVE_VALUE, "tokens is negative"),
        stage="ingest",
        topic="usage",
        partition=1,
        offset=2,
        index=0,
        original=b"\xff",
        rejected_at=datetime(2026, 12, 1, tzinfo=UTC),
    )
    assert foreign_decode(letter)["original"] == b"\xff"


def test_the_hand_written_contributions_match_their_published_schema() -> None:
    record = {
        "catalog_version": "v1",
        "source_partition": 3,
        "customer": ["acme", "acme"],
        "id": ["e-1", "e-2"],
        "source": ["api", "api"],
        "subject": ["ws-1", "ws-1"],
        "type": ["ai.tokens", "ai.tokens"],
        "time": [1_700_000_000_000_000, 1_700_000_000_000_001],
        "event": [0, 1],
        "digest": [b"d" * 16, b"e" * 16],
        "meter": ["tokens", "tokens"],
        "aggregation": ["SUM", "SUM"],
        "group": [["m"], ["m"]],
        "value": ["1.5", "2"],
        "progress": [{"source_partition": 3, "event_time": 1_700_000_000_000_001}],
    }
    try:
        payload = ContributionsWriter().encode(record)
    except (KeyError, TypeError) as exc:  # the layout moved on: say so, do not pass silently
        pytest.fail(f"contributions layout changed, update this record: {exc!r}")
    decoded = foreign_decode(payload)
    assert decoded["customer"] == ["acme", "acme"] and decoded["source_partition"] == 3
    assert decoded["id"] == ["e-1", "e-2"] and decoded["group"] == [["m"], ["m"]]
    [mark] = decoded["progress"]  # a timestamp-micros, read as the instant it is
    assert mark["event_time"] == datetime(2023, 11, 14, 22, 13, 20, 1, tzinfo=UTC)
