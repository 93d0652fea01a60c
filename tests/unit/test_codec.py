"""The usage contract on the wire: framings, schema evolution and dead letters.

No broker and no registry: Confluent framing runs against an in-memory registry twin.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import sys
import types
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.domain.cloudevents import to_json
from streams.domain.rejections import Reason, Rejection
from streams.domain.usage import UsageEvent
from streams.wire.codec import (
    CURRENT_VERSION,
    DEAD_LETTER_SCHEMA,
    EVENT_VERSIONS,
    MAX_DEAD_LETTER_ORIGINAL,
    SINGLE_OBJECT_MAGIC,
    RegistryUnavailable,
    SchemaRegistryFraming,
    Undecodable,
    UsageCodec,
    batch_schema,
    decode_dead_letter,
    encode_dead_letter,
    load_schema,
    schema_fingerprint,
)
from tests.unit.avro_vectors import single_object, v1_record

T0 = datetime(2025, 1, 15, 12, 0, 0, 123456, tzinfo=UTC)
V1_EVENT = EVENT_VERSIONS[1]
V2_EVENT = EVENT_VERSIONS[2]


def make_event(**changes: Any) -> UsageEvent:
    event = UsageEvent(
        id="evt-1",
        source="api-gateway/eu-west-1",
        type="ai.tokens",
        subject="ws-42",
        time=T0,
        values={"tokens": Decimal("1234.5"), "cost": Decimal("0.000000001")},
        dimensions={"model": "gpt-x", "direction": "input"},
        dataschema="https://schemas.example/ai-tokens.json",
        specversion="1.0",
    )
    return event._replace(**changes)


def only_rejection(decoded: list[UsageEvent | Rejection]) -> Rejection:
    assert len(decoded) == 1
    assert isinstance(decoded[0], Rejection), decoded
    return decoded[0]


@pytest.fixture(scope="module")
def codec() -> UsageCodec:
    return UsageCodec()


# -- strategies ----------------------------------------------------------------------


@st.composite
def decimals_38_9(draw: st.DrawFn) -> Decimal:
    """Any Decimal(38, 9): up to 29 integer digits and up to 9 fractional digits."""
    scale = draw(st.integers(0, 9))
    unscaled = draw(st.integers(-(10 ** (29 + scale)) + 1, 10 ** (29 + scale) - 1))
    return Decimal(f"{unscaled}E-{scale}")


fixed_offsets = st.builds(
    timezone, st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23))
)
aware_datetimes = st.datetimes(
    min_value=datetime(1900, 1, 2),  # noqa: DTZ001 - hypothesis bounds are naive by API
    max_value=datetime(2200, 1, 1),  # noqa: DTZ001
    timezones=fixed_offsets,
)

events = st.builds(
    UsageEvent,
    id=st.text(),
    source=st.text(),
    type=st.text(),
    subject=st.text(),
    time=aware_datetimes,
    values=st.dictionaries(st.text(), decimals_38_9(), max_size=4),
    dimensions=st.dictionaries(st.text(), st.text(), max_size=4),
    dataschema=st.none() | st.text(),
    specversion=st.text(),
)


# -- schemas and fingerprints ----------------------------------------------------------


def test_fingerprint_matches_the_avro_spec_test_vector() -> None:
    fp = schema_fingerprint("null")  # type: ignore[arg-type]

    assert fp == bytes.fromhex("8a8f25cce724dd63")
    assert int.from_bytes(fp, "little") == 7195948357588979594


def test_fingerprint_is_of_the_canonical_form_so_docs_do_not_change_it() -> None:
    without_docs = json.loads(json.dumps(V2_EVENT))
    without_docs.pop("doc")
    for f in without_docs["fields"]:
        f.pop("doc", None)

    assert schema_fingerprint(without_docs) == schema_fingerprint(V2_EVENT)


def test_every_released_schema_has_its_own_fingerprint() -> None:
    fingerprints = {
        schema_fingerprint(s) for v in EVENT_VERSIONS.values() for s in (v, batch_schema(v))
    }

    assert len(fingerprints) == 2 * len(EVENT_VERSIONS)
    assert all(len(fp) == 8 for fp in fingerprints)


def test_current_version_is_the_newest_released_one() -> None:
    assert CURRENT_VERSION == max(EVENT_VERSIONS) == 2


def test_batch_schema_inlines_the_given_event_version() -> None:
    batch = batch_schema(V1_EVENT)

    assert batch["name"] == "UsageBatch"
    assert batch["fields"][0]["type"]["items"] is V1_EVENT
    assert batch_schema(V2_EVENT)["fields"][0]["type"]["items"] is V2_EVENT


# -- single-object encoding -----------------------------------------------------------


def test_event_is_single_object_encoded_with_the_current_fingerprint(codec: UsageCodec) -> None:
    event = make_event()
    payload = codec.encode_event(event)

    assert payload[:2] == b"\xc3\x01"
    assert payload[2:10] == schema_fingerprint(V2_EVENT)
    assert payload == single_object(V2_EVENT, event._asdict())


def test_batch_is_single_object_encoded_with_the_batch_fingerprint(codec: UsageCodec) -> None:
    events = [make_event(id="a"), make_event(id="b")]
    payload = codec.encode_batch(events)

    assert payload[:2] == SINGLE_OBJECT_MAGIC
    assert payload[2:10] == schema_fingerprint(batch_schema(V2_EVENT))
    assert payload == single_object(
        batch_schema(V2_EVENT), {"events": [e._asdict() for e in events]}
    )


def test_any_avro_library_reads_the_body_with_the_avsc_file(codec: UsageCodec) -> None:
    payload = codec.encode_event(make_event())

    record = fastavro.schemaless_reader(io.BytesIO(payload[10:]), fastavro.parse_schema(V2_EVENT))

    assert UsageEvent(**record) == make_event()


@settings(max_examples=100, deadline=None)
@given(event=events)
def test_event_round_trip(codec: UsageCodec, event: UsageEvent) -> None:
    (decoded,) = codec.decode(codec.encode_event(event))

    assert decoded == event
    assert isinstance(decoded, UsageEvent)
    assert decoded.time.utcoffset() == timedelta(0)
    assert all(v.as_tuple().exponent == -9 for v in decoded.values.values())


@settings(max_examples=30, deadline=None)
@given(batch=st.lists(events, max_size=5))
def test_batch_round_trip_keeps_order(codec: UsageCodec, batch: list[UsageEvent]) -> None:
    assert codec.decode(codec.encode_batch(batch)) == batch


@settings(max_examples=30, deadline=None)
@given(batch=st.lists(events, min_size=1, max_size=4))
def test_decoded_records_re_encode_to_the_same_bytes(
    codec: UsageCodec, batch: list[UsageEvent]
) -> None:
    payload = codec.encode_batch(batch)

    assert codec.encode_batch(codec.decode_events(payload).events) == payload


def test_empty_batch_decodes_to_no_events(codec: UsageCodec) -> None:
    assert codec.decode(codec.encode_batch([])) == []


# -- schema evolution ------------------------------------------------------------------


def test_v1_event_is_read_by_the_v2_reader_with_defaults(codec: UsageCodec) -> None:
    event = make_event()
    payload = single_object(V1_EVENT, v1_record(event))

    (decoded,) = codec.decode(payload)

    assert decoded == event._replace(dataschema=None, specversion="1.0")


def test_v1_batch_is_read_by_the_v2_reader(codec: UsageCodec) -> None:
    events = [make_event(id="a"), make_event(id="b", dimensions={})]
    payload = single_object(batch_schema(V1_EVENT), {"events": [v1_record(e) for e in events]})

    decoded = codec.decode(payload)

    assert decoded == [e._replace(dataschema=None, specversion="1.0") for e in events]


def test_v2_bytes_are_read_by_a_v1_reader(codec: UsageCodec) -> None:
    """Forward compatibility: a consumer still on v1 reads what v2 producers write."""
    event = make_event()
    payload = codec.encode_event(event)

    record = fastavro.schemaless_reader(
        io.BytesIO(payload[10:]),
        fastavro.parse_schema(V2_EVENT),
        fastavro.parse_schema(V1_EVENT),
    )

    assert record == v1_record(event)


def test_v2_batch_is_read_by_a_v1_batch_reader(codec: UsageCodec) -> None:
    events = [make_event(id="a"), make_event(id="b")]
    payload = codec.encode_batch(events)

    record = fastavro.schemaless_reader(
        io.BytesIO(payload[10:]),
        fastavro.parse_schema(batch_schema(V2_EVENT)),
        fastavro.parse_schema(batch_schema(V1_EVENT)),
    )

    assert record == {"events": [v1_record(e) for e in events]}


def test_is_current(codec: UsageCodec) -> None:
    event = make_event()

    assert codec.is_current(codec.encode_event(event))
    assert codec.is_current(codec.encode_batch([event]))
    assert not codec.is_current(single_object(V1_EVENT, v1_record(event)))
    assert not codec.is_current(single_object(batch_schema(V1_EVENT), {"events": []}))
    assert not codec.is_current(to_json(event).encode())
    assert not codec.is_current(b"")
    assert not codec.is_current(SINGLE_OBJECT_MAGIC + schema_fingerprint("null"))  # type: ignore[arg-type]


# -- what cannot be decoded --------------------------------------------------------------


def test_unknown_fingerprint_is_unknown_schema(codec: UsageCodec) -> None:
    body = codec.encode_event(make_event())[10:]
    unknown = schema_fingerprint("null")  # type: ignore[arg-type]

    rejection = only_rejection(codec.decode(SINGLE_OBJECT_MAGIC + unknown + body))

    assert rejection.reason is Reason.UNKNOWN_SCHEMA
    assert unknown.hex() in rejection.detail


@pytest.mark.parametrize(
    "payload",
    [b"", b"x", b"garbage", b"\xff" * 32, b"[1, 2]", b" {}", b"\x00\x00\x01", b"\xc3"],
)
def test_garbage_is_malformed_payload(codec: UsageCodec, payload: bytes) -> None:
    assert only_rejection(codec.decode(payload)).reason is Reason.MALFORMED_PAYLOAD


def test_decode_records_raises_undecodable_with_the_rejection(codec: UsageCodec) -> None:
    with pytest.raises(Undecodable) as info:
        codec.decode_records(b"garbage")

    assert info.value.rejection.reason is Reason.MALFORMED_PAYLOAD


def test_every_truncation_of_the_body_is_malformed(codec: UsageCodec) -> None:
    for payload in (codec.encode_event(make_event()), codec.encode_batch([make_event()] * 2)):
        for end in range(10, len(payload)):
            rejection = only_rejection(codec.decode(payload[:end]))
            assert rejection.reason is Reason.MALFORMED_PAYLOAD, end


@pytest.mark.parametrize("extra", [b"\x00", b"\x02a", b"trailing"])
def test_trailing_bytes_are_malformed(codec: UsageCodec, extra: bytes) -> None:
    rejection = only_rejection(codec.decode(codec.encode_event(make_event()) + extra))

    assert rejection.reason is Reason.MALFORMED_PAYLOAD
    assert "trailing" in rejection.detail


def test_corrupt_body_is_malformed(codec: UsageCodec) -> None:
    payload = bytearray(codec.encode_event(make_event()))
    payload[10] = 0x7F  # the id's length becomes -64

    assert only_rejection(codec.decode(bytes(payload))).reason is Reason.MALFORMED_PAYLOAD


@pytest.mark.parametrize("cut", [2, 5, 9])
def test_truncated_single_object_header_is_malformed(codec: UsageCodec, cut: int) -> None:
    payload = codec.encode_event(make_event())[:cut]

    assert only_rejection(codec.decode(payload)).reason is Reason.MALFORMED_PAYLOAD


# -- Confluent Schema Registry framing --------------------------------------------------


@dataclass
class FakeSchema:
    """Stands in for ``confluent_kafka.schema_registry.Schema``."""

    schema_str: str
    schema_type: str = "AVRO"


class InMemoryRegistry:
    """The registry client twin: ``register_schema`` and ``get_schema`` as the real one."""

    def __init__(self) -> None:
        self.schemas: dict[int, str] = {}
        self.registrations: list[str] = []
        self.get_calls = 0
        self.down = False

    def register_schema(self, subject: str, schema: Any) -> int:
        self.registrations.append(subject)
        for schema_id, text in self.schemas.items():
            if text == schema.schema_str:
                return schema_id
        return self.add(schema.schema_str)

    def add(self, schema_str: str) -> int:
        schema_id = 100 + len(self.schemas)
        self.schemas[schema_id] = schema_str
        return schema_id

    def get_schema(self, schema_id: int) -> FakeSchema:
        self.get_calls += 1
        if self.down:
            raise ConnectionError("registry unreachable")
        if schema_id not in self.schemas:
            raise NotFound(schema_id)
        return FakeSchema(self.schemas[schema_id])


class NotFound(Exception):
    """What the real client raises for an unknown id (SchemaRegistryError, HTTP 404)."""

    http_status_code = 404


@pytest.fixture
def fake_schema_module(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("confluent_kafka.schema_registry")
    module.Schema = FakeSchema  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "confluent_kafka.schema_registry", module)


@pytest.fixture
def registry(fake_schema_module: None) -> InMemoryRegistry:
    return InMemoryRegistry()


def confluent(schema_id: int, body: bytes) -> bytes:
    return struct.pack(">bI", 0, schema_id) + body


def test_confluent_event_round_trip(registry: InMemoryRegistry) -> None:
    codec = UsageCodec(SchemaRegistryFraming(registry))
    event = make_event()

    payload = codec.encode_event(event)

    (schema_id,) = registry.schemas
    assert payload[:5] == b"\x00" + schema_id.to_bytes(4, "big")
    assert json.loads(registry.schemas[schema_id]) == V2_EVENT
    assert registry.registrations == ["usage-value"]
    assert codec.decode(payload) == [event]
    assert not codec.is_current(payload)


def test_confluent_batch_round_trip_registers_the_batch_subject(registry: InMemoryRegistry) -> None:
    codec = UsageCodec(SchemaRegistryFraming(registry, subject="billing-usage"))
    events = [make_event(id="a"), make_event(id="b")]

    payload = codec.encode_batch(events)

    assert registry.registrations == ["billing-usage-batch"]
    assert json.loads(registry.schemas[struct.unpack(">I", payload[1:5])[0]]) == batch_schema(
        V2_EVENT
    )
    assert codec.decode(payload) == events


def test_confluent_registers_each_schema_once(registry: InMemoryRegistry) -> None:
    codec = UsageCodec(SchemaRegistryFraming(registry))
    for _ in range(3):
        codec.encode_event(make_event())
        codec.encode_batch([make_event()])

    assert registry.registrations == ["usage-value", "usage-value-batch"]


def test_confluent_reader_in_another_process_resolves_ids_once(registry: InMemoryRegistry) -> None:
    writer = UsageCodec(SchemaRegistryFraming(registry))
    reader = UsageCodec(SchemaRegistryFraming(registry))
    event, batch = writer.encode_event(make_event()), writer.encode_batch([make_event(id="z")])

    for _ in range(3):
        assert reader.decode(event) == [make_event()]
        assert reader.decode(batch) == [make_event(id="z")]

    assert registry.get_calls == 2


def test_confluent_v1_writer_is_read_with_defaults(registry: InMemoryRegistry) -> None:
    schema_id = registry.add(json.dumps(V1_EVENT))
    body = single_object(V1_EVENT, v1_record(make_event()))[10:]
    codec = UsageCodec(SchemaRegistryFraming(registry))

    (decoded,) = codec.decode(confluent(schema_id, body))

    assert decoded == make_event(dataschema=None, specversion="1.0")


def test_confluent_id_of_another_record_is_unknown_schema(registry: InMemoryRegistry) -> None:
    other = {"type": "record", "name": "Invoice", "fields": [{"name": "id", "type": "string"}]}
    schema_id = registry.add(json.dumps(other))
    codec = UsageCodec(SchemaRegistryFraming(registry))

    rejection = only_rejection(codec.decode(confluent(schema_id, b"\x02a")))

    assert rejection.reason is Reason.UNKNOWN_SCHEMA
    assert str(schema_id) in rejection.detail


def test_confluent_id_the_registry_does_not_know_is_unknown_schema(
    registry: InMemoryRegistry,
) -> None:
    codec = UsageCodec(SchemaRegistryFraming(registry))

    assert only_rejection(codec.decode(confluent(7, b"\x02a"))).reason is Reason.UNKNOWN_SCHEMA


def test_confluent_framing_without_registry_is_unknown_schema(registry: InMemoryRegistry) -> None:
    payload = UsageCodec(SchemaRegistryFraming(registry)).encode_event(make_event())

    rejection = only_rejection(UsageCodec().decode(payload))

    assert rejection.reason is Reason.UNKNOWN_SCHEMA
    assert "registry" in rejection.detail


def test_confluent_truncated_and_trailing_bodies_are_malformed(registry: InMemoryRegistry) -> None:
    codec = UsageCodec(SchemaRegistryFraming(registry))
    payload = codec.encode_event(make_event())

    assert only_rejection(codec.decode(payload[:-1])).reason is Reason.MALFORMED_PAYLOAD
    assert only_rejection(codec.decode(payload + b"\x00")).reason is Reason.MALFORMED_PAYLOAD
    assert only_rejection(codec.decode(payload[:4])).reason is Reason.MALFORMED_PAYLOAD


def test_confluent_schema_registered_with_its_full_name_is_read(registry: InMemoryRegistry) -> None:
    full_name = dict(V2_EVENT, name="dev.railyard.usage.UsageEvent")
    del full_name["namespace"]
    schema_id = registry.add(json.dumps(full_name))
    body = UsageCodec().encode_event(make_event())[10:]

    assert UsageCodec(SchemaRegistryFraming(registry)).decode(confluent(schema_id, body)) == [
        make_event()
    ]


def test_confluent_registry_outage_is_not_remembered(registry: InMemoryRegistry) -> None:
    payload = UsageCodec(SchemaRegistryFraming(registry)).encode_event(make_event())
    reader = UsageCodec(SchemaRegistryFraming(registry, retry_delay_s=0))
    registry.down = True
    with pytest.raises(RegistryUnavailable):  # retry, never a dead letter: the message is fine
        reader.decode(payload)
    registry.down = False

    assert reader.decode(payload) == [make_event()]


def test_schema_registry_framing_works_with_the_declared_dependencies() -> None:
    framing = SchemaRegistryFraming(InMemoryRegistry())

    assert framing.header(False)[:1] == b"\x00"


# -- CloudEvents JSON --------------------------------------------------------------------


def test_json_payload_is_decoded_as_a_cloudevent(codec: UsageCodec) -> None:
    event = make_event()

    assert codec.decode(to_json(event).encode()) == [event]


def test_bad_json_payload_is_malformed(codec: UsageCodec) -> None:
    assert only_rejection(codec.decode(b'{"id": ')).reason is Reason.MALFORMED_PAYLOAD


def test_json_payload_breaking_the_contract_is_rejected(codec: UsageCodec) -> None:
    rejection = only_rejection(codec.decode(b'{"id": "e", "source": "s", "type": "t"}'))

    assert rejection.reason is Reason.MISSING_FIELD
    assert rejection.event_id == "e"


# -- dead letters --------------------------------------------------------------------------


def test_dead_letter_layout() -> None:
    payload = encode_dead_letter(
        Rejection(Reason.NEGATIVE_VALUE, "data.tokens is negative: -1"),
        stage="ingest",
        topic="usage",
        partition=0,
        offset=0,
        index=0,
        original=b"",
    )

    assert payload[:2] == SINGLE_OBJECT_MAGIC
    assert payload[2:10] == schema_fingerprint(load_schema("dead_letter.v1.avsc"))
    assert fastavro.schemaless_reader(io.BytesIO(payload[10:]), DEAD_LETTER_SCHEMA)["stage"] == (
        "ingest"
    )


@settings(max_examples=50, deadline=None)
@given(
    reason=st.sampled_from(Reason),
    detail=st.text(),
    event_id=st.none() | st.text(),
    subject=st.none() | st.text(),
    partition=st.integers(0, 2**31 - 1),
    offset=st.integers(0, 2**63 - 1),
    index=st.integers(0, 2**16 - 1),
    original=st.binary(),
    rejected_at=st.datetimes(
        min_value=datetime(2000, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive by API
        max_value=datetime(2100, 1, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
)
def test_dead_letter_round_trip(
    reason: Reason,
    detail: str,
    event_id: str | None,
    subject: str | None,
    partition: int,
    offset: int,
    index: int,
    original: bytes,
    rejected_at: datetime,
) -> None:
    payload = encode_dead_letter(
        Rejection(reason, detail, event_id, subject),
        stage="ingest",
        topic="usage",
        partition=partition,
        offset=offset,
        index=index,
        original=original,
        rejected_at=rejected_at,
    )

    assert decode_dead_letter(payload) == {
        "reason": str(reason),
        "detail": detail,
        "stage": "ingest",
        "topic": "usage",
        "partition": partition,
        "offset": offset,
        "index": index,
        "event_id": event_id,
        "subject": subject,
        "original": original,
        "rejected_at": rejected_at,
    }


def test_dead_letter_defaults_rejected_at_to_now_in_utc() -> None:
    before = datetime.now(UTC)
    payload = encode_dead_letter(
        Rejection(Reason.MALFORMED_PAYLOAD, "x"),
        stage="ingest",
        topic="usage",
        partition=1,
        offset=2,
        index=3,
        original=b"\x00",
    )
    after = datetime.now(UTC)

    rejected_at = decode_dead_letter(payload)["rejected_at"]
    assert rejected_at.utcoffset() == timedelta(0)
    assert before - timedelta(microseconds=1) <= rejected_at <= after


def test_a_huge_original_is_cut_and_referenced_not_lost() -> None:
    huge = bytes(range(256)) * (MAX_DEAD_LETTER_ORIGINAL // 128)  # twice the limit
    payload = encode_dead_letter(
        Rejection(Reason.OVERSIZED_PAYLOAD, "message of 524288 bytes"),
        stage="ingest",
        topic="usage",
        partition=3,
        offset=77,
        index=0,
        original=huge,
        rejected_at=datetime(2026, 12, 1, tzinfo=UTC),
    )
    record = decode_dead_letter(payload)
    assert len(payload) < 2 * MAX_DEAD_LETTER_ORIGINAL // 1.5
    assert record["original"] == huge[:MAX_DEAD_LETTER_ORIGINAL]
    assert hashlib.sha256(huge).hexdigest() in record["detail"]
    assert f"{len(huge)} bytes" in record["detail"] and "usage[3]@77" in record["detail"]
    small = encode_dead_letter(
        Rejection(Reason.OVERSIZED_PAYLOAD, "x"),
        stage="ingest",
        topic="usage",
        partition=0,
        offset=0,
        index=0,
        original=b"abc",
        rejected_at=datetime(2026, 12, 1, tzinfo=UTC),
    )
    assert decode_dead_letter(small)["original"] == b"abc"
    assert decode_dead_letter(small)["detail"] == "x"
