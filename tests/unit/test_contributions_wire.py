"""The hand-written ``usage.attributed`` codec agrees with fastavro, byte for byte.

fastavro is the reference. The writer produces exactly ``ATTRIBUTED.encode``'s bytes;
the reader returns what fastavro reads (the columns windowing uses) and refuses, with
:class:`WireError` only, what fastavro refuses. One deliberate difference: the reader
steps over the catalog version and the id, source, subject and type columns without
decoding them, so the reference reads those as ``bytes`` (the same wire encoding, no
UTF-8 check).
"""

from __future__ import annotations

import copy
import io
import json
from typing import Any

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.domain.meters import Aggregation
from streams.wire.codec import load_schema
from streams.wire.contributions import (
    FIELDS,
    ContributionsWriter,
    WireContributions,
    read_contributions,
)
from streams.wire.records import ATTRIBUTED, _without_logical_types, inline_event
from streams.wire.varint import WireError
from tests.unit.test_usage_reader import zigzag

SCHEMA = _without_logical_types(inline_event(load_schema("attributed_usage.v2.avsc")))
_STEPPED_OVER = copy.deepcopy(SCHEMA)
for _field in _STEPPED_OVER["fields"]:
    if _field["name"] == "catalog_version":
        _field["type"] = "bytes"
    elif _field["name"] in ("id", "source", "subject", "type"):
        _field["type"] = {"type": "array", "items": "bytes"}
REFERENCE = fastavro.parse_schema(_STEPPED_OVER)

texts = st.text(max_size=12)
repeated = st.sampled_from(["acme", "globex", "initech", "", "ünïcødé", "x" * 70])
micros = st.integers(-(1 << 62), (1 << 62))


@st.composite
def bodies(draw: st.DrawFn) -> dict[str, Any]:
    events = draw(st.integers(0, 6))
    per_event = {
        "customer": st.lists(repeated | texts, min_size=events, max_size=events),
        "id": st.lists(texts, min_size=events, max_size=events),
        "source": st.lists(repeated, min_size=events, max_size=events),
        "subject": st.lists(repeated | texts, min_size=events, max_size=events),
        "type": st.lists(repeated, min_size=events, max_size=events),
        "time": st.lists(micros, min_size=events, max_size=events),
        "digest": st.lists(st.binary(min_size=16, max_size=16), min_size=events, max_size=events),
    }
    body: dict[str, Any] = {
        "catalog_version": draw(texts),
        "source_partition": draw(st.integers(0, 5000)),
    }
    body.update({name: draw(strategy) for name, strategy in per_event.items()})
    n = draw(st.integers(0, 8)) if events else 0
    body["event"] = sorted(
        draw(st.lists(st.integers(0, max(events - 1, 0)), min_size=n, max_size=n))
    )
    body["meter"] = draw(st.lists(repeated, min_size=n, max_size=n))
    body["aggregation"] = draw(st.lists(st.sampled_from(list(Aggregation)), min_size=n, max_size=n))
    body["group"] = draw(
        st.lists(st.lists(repeated, max_size=3).map(tuple), min_size=n, max_size=n)
    )
    body["value"] = draw(
        st.lists(st.sampled_from(["1", "0.5", "1000"]) | texts, min_size=n, max_size=n)
    )
    body["progress"] = draw(
        st.lists(
            st.fixed_dictionaries({"source_partition": st.integers(0, 5000), "event_time": micros}),
            max_size=3,
        )
    )
    return body


def fastavro_reading(payload: bytes) -> dict[str, Any] | None:
    """fastavro's reading of the body; None where it refuses it or bytes are left over."""
    if payload[:10] != ATTRIBUTED.header:
        return None
    buf = io.BytesIO(payload)
    buf.seek(10)
    try:
        r: Any = fastavro.schemaless_reader(buf, REFERENCE, None)
    except Exception:
        return None
    return r if buf.tell() == len(payload) else None


def reference(payload: bytes) -> WireContributions | None:
    """fastavro's reading, projected to what the reader returns."""
    r = fastavro_reading(payload)
    if r is None:
        return None
    return WireContributions(
        r["source_partition"],
        r["customer"],
        r["time"],
        r["digest"],
        r["event"],
        r["meter"],
        r["aggregation"],
        [tuple(g) for g in r["group"]],
        r["value"],
        [(p["source_partition"], p["event_time"]) for p in r["progress"]],
    )


def ours(payload: bytes) -> WireContributions | None:
    try:
        return read_contributions(payload)
    except WireError:
        return None


def agrees(payload: bytes) -> None:
    """What we read, fastavro reads the same. What we refuse, fastavro refuses too, or
    reads only by tolerating what the spec forbids (a varint beyond 64 bits, which it
    wraps): its reading then does not write back to the body."""
    read, expected = ours(payload), reference(payload)
    if read is not None or expected is None:
        assert read == expected
    else:
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, REFERENCE, fastavro_reading(payload))
        assert buf.getvalue() != payload[10:]


def test_the_layout_is_the_schema_s() -> None:
    assert FIELDS == tuple(f["name"] for f in load_schema("attributed_usage.v2.avsc")["fields"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies())
def test_the_writer_writes_what_fastavro_writes(body: dict[str, Any]) -> None:
    writer = ContributionsWriter()

    first, again = writer.encode(body), writer.encode(body)  # the second from its caches

    assert first == again == ATTRIBUTED.encode(body)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies())
def test_the_reader_reads_what_fastavro_reads(body: dict[str, Any]) -> None:
    payload = ATTRIBUTED.encode(body)

    read = read_contributions(payload)

    assert read == reference(payload)
    assert read.customer == body["customer"] and read.digest == body["digest"]
    assert read.group == [tuple(g) for g in body["group"]]
    assert read.progress == [(p["source_partition"], p["event_time"]) for p in body["progress"]]


def test_group_lists_are_written_like_tuples() -> None:
    """Lists can't key the cache; they are encoded each time, to the same bytes."""
    body = {name: [] for name in FIELDS[2:]} | {"catalog_version": "v", "source_partition": 0}
    body |= {
        "customer": ["c"],
        "id": ["i"],
        "source": ["s"],
        "subject": ["s"],
        "type": ["t"],
        "time": [1],
        "digest": [b"d" * 16],
        "event": [0, 0],
        "meter": ["m", "m"],
        "aggregation": ["SUM", "SUM"],
        "group": [["a", "b"], ("a", "b")],
        "value": ["1", "2"],
    }

    assert ContributionsWriter().encode(body) == ATTRIBUTED.encode(body)


def test_blocks_that_state_their_byte_size_are_read() -> None:
    """Avro lets a writer give an array block a negative count and its size in bytes."""

    def text(s: str) -> bytes:
        return zigzag(len(s.encode())) + s.encode()

    def sized(*items: bytes) -> bytes:
        block = b"".join(items)
        return zigzag(-len(items)) + zigzag(len(block)) + block + zigzag(0)

    body = text("v1") + zigzag(3) + sized(text("acme"), text("globex"))
    body += b"".join(sized(text("a"), text("b")) for _ in range(4))  # id, source, subject, type
    body += sized(zigzag(5), zigzag(-6)) + sized(text("d" * 16), text("e" * 16))
    body += sized(zigzag(1)) + sized(text("tokens")) + sized(text("SUM"))
    body += sized(sized(text("gpt"), text("input"))) + sized(text("12.5"))
    body += sized(zigzag(3) + zigzag(99))
    payload = ATTRIBUTED.header + body

    read = read_contributions(payload)

    assert read == reference(payload)
    assert read == WireContributions(
        3,
        ["acme", "globex"],
        [5, -6],
        [b"d" * 16, b"e" * 16],
        [1],
        ["tokens"],
        ["SUM"],
        [("gpt", "input")],
        ["12.5"],
        [(3, 99)],
    )


def example() -> bytes:
    return ATTRIBUTED.encode(
        {
            "catalog_version": "2026-11-01",
            "source_partition": 2,
            "customer": ["acme", "globex"],
            "id": ["e1", "e2"],
            "source": ["s", "s"],
            "subject": ["k1", "k2"],
            "type": ["ai.tokens", "ai.tokens"],
            "time": [1_764_000_000_000_000, 1_764_000_000_000_001],
            "digest": [b"1" * 16, b"2" * 16],
            "event": [0, 1, 1],
            "meter": ["tokens", "tokens", "calls"],
            "aggregation": ["SUM", "SUM", "COUNT"],
            "group": [("gpt", "input"), ("gpt", "output"), ()],
            "value": ["10", "20", "1"],
            "progress": [{"source_partition": 2, "event_time": 1_764_000_000_000_001}],
        }
    )


@pytest.mark.parametrize("cut", range(1, 60))
def test_a_truncated_body_is_refused(cut: int) -> None:
    with pytest.raises(WireError):
        read_contributions(example()[:-cut])


def test_trailing_bytes_and_other_schemas_are_refused() -> None:
    with pytest.raises(WireError, match="add up"):
        read_contributions(example() + b"\x00")
    with pytest.raises(WireError, match="not an AttributedContributions"):
        read_contributions(b"\xc3\x01" + bytes(8) + example()[10:])


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=bodies(),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=3),
)
def test_corrupt_bytes_are_refused_where_fastavro_refuses_them(
    body: dict[str, Any], edits: list[tuple[int, int]]
) -> None:
    payload = bytearray(ATTRIBUTED.encode(body))
    for where, byte in edits:
        at = 10 + where % (len(payload) - 10)
        payload[at] = byte

    agrees(bytes(payload))


@settings(max_examples=300, deadline=None)
@given(tail=st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_wire_errors(tail: bytes) -> None:
    payload = ATTRIBUTED.header + tail

    agrees(payload)


def test_the_reference_schema_only_relaxes_the_stepped_over_columns() -> None:
    relaxed = [
        f["name"]
        for f, g in zip(SCHEMA["fields"], _STEPPED_OVER["fields"], strict=True)
        if json.dumps(f) != json.dumps(g)
    ]
    assert relaxed == ["catalog_version", "id", "source", "subject", "type"]
