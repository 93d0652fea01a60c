"""Container files built from message bodies must read back, with fastavro, as the records."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from decimal import Decimal

import fastavro
from confluent_kafka import Message
from hypothesis import given
from hypothesis import strategies as st

from connectors.clickhouse.sink import UsageEventsWriter
from streams.domain.usage import UsageEvent
from streams.wire.codec import UsageCodec
from streams.wire.container import container, wrap_single
from streams.wire.varint import read_long, write_long


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_varints_round_trip_every_long(n: int) -> None:
    encoded = write_long(n)
    buf = io.BytesIO(encoded)
    assert fastavro.schemaless_reader(buf, "long", None) == n  # type: ignore[arg-type]
    assert read_long(encoded + b"tail", 0) == (n, len(encoded))


def _msg(value: bytes, offset: int) -> Message:
    return Message(topic="usage.accepted", partition=4, offset=offset, value=value)


def _event(i: int) -> UsageEvent:
    return UsageEvent(
        id=f"e{i}",
        source="s",
        type="ai.tokens",
        subject="k",
        time=datetime(2026, 11, 1, 12, 0, i, tzinfo=UTC),
        values={"tokens": Decimal(i) / 4},
        dimensions={"model": "m"},
    )


def test_batch_and_single_bodies_become_records_of_the_landing_schema() -> None:
    codec, writer = UsageCodec(), UsageEventsWriter()
    msgs = [
        _msg(codec.encode_batch([_event(1), _event(2), _event(3)]), 10),
        _msg(codec.encode_event(_event(4)), 11),
    ]
    landed = [writer.record(m) for m in msgs]
    assert [x[1] for x in landed if x] == [3, 1]
    data = b"".join(container(writer.schema, 2, [p for x in landed if x for p in x[0]]))
    records = list(fastavro.reader(io.BytesIO(data)))
    assert [(r["kafka_partition"], r["kafka_offset"], len(r["events"])) for r in records] == [
        (4, 10, 3),
        (4, 11, 1),
    ]
    assert [e["values"]["tokens"] for r in records for e in r["events"]] == [
        Decimal(i) / 4 for i in range(1, 5)
    ]
    assert wrap_single(b"x") == b"\x02x\x00"


def test_a_body_not_in_the_newest_schema_is_left_to_the_row_path() -> None:
    writer = UsageEventsWriter()
    assert writer.record(_msg(b'{"id": 1}', 0)) is None
    assert writer.record(_msg(b"\xc3\x01" + bytes(8) + b"\x02", 0)) is None
