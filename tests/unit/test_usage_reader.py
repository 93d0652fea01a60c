"""The hand-walked reader of the current usage layout agrees with fastavro, byte for byte.

fastavro is the reference: for every body it reads, ``read_usage`` returns the same
events; for every body it refuses (or that has bytes left over), ``read_usage``
raises :class:`WireError` and nothing else. The one place they differ, on purpose, is a
negative union branch, which the Avro spec does not allow and fastavro reads anyway.
"""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.domain.usage import UsageEvent
from streams.wire.codec import CURRENT_VERSION, EVENT_VERSIONS, UsageCodec, batch_schema
from streams.wire.usage_reader import read_usage
from streams.wire.varint import WireError, read_long
from tests.unit.test_codec import events, make_event

CODEC = UsageCodec()
EVENT = fastavro.parse_schema(EVENT_VERSIONS[CURRENT_VERSION])
BATCH = fastavro.parse_schema(batch_schema(EVENT_VERSIONS[CURRENT_VERSION]))


def reference(body: bytes, batch: bool) -> list[UsageEvent] | None:
    """fastavro's reading of the body, or None where it (or the length check) refuses it."""
    buf = io.BytesIO(body)
    try:
        record: Any = fastavro.schemaless_reader(buf, BATCH if batch else EVENT, None)
    except Exception:
        return None
    if buf.tell() != len(body):
        return None
    return [UsageEvent(**r) for r in (record["events"] if batch else [record])]


def ours(body: bytes, batch: bool) -> list[UsageEvent] | None:
    try:
        return read_usage(body, 0, batch).events
    except WireError:
        return None


def agrees(body: bytes, batch: bool) -> None:
    """What we read, fastavro reads the same. What we refuse, fastavro refuses too, or
    reads only by tolerating what the spec forbids (a negative union branch, which it
    takes as an index from the end): its reading then does not write back to the body."""
    read, expected = ours(body, batch), reference(body, batch)
    if read is not None or expected is None:
        assert read == expected
    elif batch:
        assert CODEC.encode_batch(expected)[10:] != body
    else:
        assert CODEC.encode_event(expected[0])[10:] != body


def zigzag(n: int) -> bytes:
    z, out = (n << 1) ^ (n >> 63), bytearray()
    while z & ~0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


@settings(max_examples=300, deadline=None)
@given(event=events)
def test_one_event_reads_as_fastavro_reads_it(event: UsageEvent) -> None:
    body = CODEC.encode_event(event)[10:]

    (read,) = read_usage(body, 0, batch=False).events

    assert [read] == reference(body, batch=False) == [event]
    assert [v.as_tuple().exponent for v in read.values.values()] == [-9] * len(read.values)


@settings(max_examples=60, deadline=None)
@given(batch=st.lists(events, max_size=6))
def test_a_batch_reads_in_order(batch: list[UsageEvent]) -> None:
    payload = CODEC.encode_batch(batch)

    read = read_usage(payload, 10, batch=True)

    assert read.events == batch
    # Each event spans in the batch exactly the bytes of its own single-object body.
    assert read.largest == max((len(CODEC.encode_event(e)) - 10 for e in batch), default=0)


def text(s: str) -> bytes:
    return zigzag(len(s.encode())) + s.encode()


def body_of(values: bytes, dimensions: bytes) -> bytes:
    """An event written by hand: the fixed fields, then the two given map encodings."""
    micros = 1_736_942_400_123_456
    head = text("evt-1") + text("src") + text("ai.tokens") + text("ws-1") + zigzag(micros)
    return head + zigzag(0) + values + dimensions + text("1.0")


def test_array_and_map_blocks_that_state_their_byte_size_are_read() -> None:
    """Avro lets a writer give a block a negative count followed by its size in bytes."""
    value = text("tokens") + zigzag(8) + (7 * 10**9).to_bytes(8, "big", signed=True)
    dimension = text("model") + text("m")
    one = body_of(
        zigzag(-1) + zigzag(len(value)) + value + zigzag(0),
        zigzag(-1) + zigzag(len(dimension)) + dimension + zigzag(0),
    )
    batch = zigzag(-2) + zigzag(2 * len(one)) + one + one + zigzag(0)

    (event,) = read_usage(one, 0, batch=False).events

    assert (event.values, event.dimensions) == ({"tokens": Decimal(7)}, {"model": "m"})
    assert [event] == reference(one, batch=False)
    assert read_usage(batch, 0, batch=True).events == reference(batch, batch=True) == [event, event]


def test_quantities_round_to_38_digits_as_fastavro_does() -> None:
    """40 significant digits: more than Decimal(38, 9) holds (validation refuses it later)."""
    raw = (10**39 + 7).to_bytes(17, "big", signed=True)
    body = body_of(zigzag(1) + text("q") + zigzag(len(raw)) + raw + zigzag(0), zigzag(0))

    (event,) = read_usage(body, 0, batch=False).events

    assert [event] == reference(body, batch=False)
    assert event.values["q"] == Decimal("1.0000000000000000000000000000000000000E+30")


@pytest.mark.parametrize("cut", range(1, 40))
def test_a_truncated_body_is_refused(cut: int) -> None:
    body = CODEC.encode_batch([make_event(), make_event(id="evt-2")])[10:]

    with pytest.raises(WireError):
        read_usage(body[:-cut], 0, batch=True)


def test_trailing_bytes_are_refused() -> None:
    body = CODEC.encode_event(make_event())[10:]

    with pytest.raises(WireError, match="trailing"):
        read_usage(body + b"\x00", 0, batch=False)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    event=events,
    batch=st.booleans(),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=3),
)
def test_corrupt_bytes_are_refused_where_fastavro_refuses_them(
    event: UsageEvent, batch: bool, edits: list[tuple[int, int]]
) -> None:
    payload = CODEC.encode_batch([event, event]) if batch else CODEC.encode_event(event)
    body = bytearray(payload[10:])
    for where, byte in edits:
        body[where % len(body)] = byte

    agrees(bytes(body), batch)


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=200), batch=st.booleans())
def test_arbitrary_bytes_raise_only_wire_errors(body: bytes, batch: bool) -> None:
    agrees(body, batch)


def test_a_negative_union_branch_is_refused() -> None:
    """fastavro reads branch -1 as the last branch (a Python index); the spec has no -1."""
    body = text("evt-1") + text("src") + text("ai.tokens") + text("ws-1") + zigzag(5)
    body += zigzag(-1) + text("") + zigzag(0) + zigzag(0) + text("1.0")

    assert reference(body, batch=False) is not None
    with pytest.raises(WireError, match="branch -1"):
        read_usage(body, 0, batch=False)


@pytest.mark.parametrize("n", [0, -1, 63, -64, 2**31, -(2**63), 2**63 - 1])
def test_varints_read_the_whole_long_range(n: int) -> None:
    assert read_long(zigzag(n), 0) == (n, len(zigzag(n)))


def test_a_varint_beyond_64_bits_is_refused() -> None:
    """fastavro wraps it silently; a long has 64 bits, so the tenth byte holds only one."""
    with pytest.raises(WireError, match="beyond 64 bits"):
        read_long(b"\xff" * 9 + b"\x02", 0)
    with pytest.raises(WireError, match="beyond 64 bits"):
        read_long(b"\xff" * 10 + b"\x01", 0)
