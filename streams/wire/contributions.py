"""Writes and reads ``usage.attributed`` bodies (AttributedContributions, version 2).

Every accepted event is encoded once by the ingest worker and decoded once by the
window worker in this layout, and fastavro spent most of that time dispatching on the
schema for each array item. The columns repeat a handful of values (customers,
meters, aggregations, groups, quantities), so the writer keeps each one's encoded
bytes and joins them; the reader builds only what windowing uses and steps over the
catalog version and the event-identity columns, which are the sink's. Byte for byte
the same Avro as fastavro (``tests/unit/test_contributions_wire.py``), for about half
its CPU (``python -m bench.decode --attributed``). The long columns (event times, event
indexes) still go through fastavro's C loops, which no Python loop beats.

Pure: dicts in, bytes out, and back.
"""

from __future__ import annotations

import io
from collections.abc import Hashable, Mapping, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any, NamedTuple

import fastavro

from streams.domain.attribution import COLUMN_NAMES
from streams.domain.metering import Contribution
from streams.domain.meters import Aggregation
from streams.domain.watermarks import EPOCH, SourceWatermarks
from streams.wire.codec import fingerprint_of
from streams.wire.records import ATTRIBUTED
from streams.wire.varint import WireError, read_long, write_long

FIELDS = ("catalog_version", "source_partition", *COLUMN_NAMES, "progress")
"""The layout this module writes and reads, in schema order (a test holds it to the .avsc)."""
_HEADER = ATTRIBUTED.header
_LONGS = fastavro.parse_schema({"type": "array", "items": "long"})
_CACHE_LIMIT = 1 << 16


_END = b"\x00"


class _Encoded(dict[Hashable, bytes]):
    """Encoded items of one column; bounded, since every value of a column may repeat."""

    def remember(self, key: Hashable, encoded: bytes) -> bytes:
        if len(self) >= _CACHE_LIMIT:
            self.clear()
        self[key] = encoded
        return encoded


def _string(s: str) -> bytes:
    raw = s.encode()
    return write_long(len(raw)) + raw


def _strings(items: Sequence[str], seen: _Encoded) -> bytes:
    """An array of strings; ``seen`` caches the encoding of values that repeat."""
    if not items:
        return _END
    parts = [write_long(len(items))]
    append = parts.append
    get = seen.get
    for s in items:
        encoded = get(s)
        append(encoded if encoded is not None else seen.remember(s, _string(s)))
    append(_END)
    return b"".join(parts)


def _blobs(items: Sequence[bytes]) -> bytes:
    """An array of bytes, or of strings that never repeat (event ids), encoded."""
    if not items:
        return _END
    parts = [write_long(len(items))]
    append = parts.append
    for raw in items:
        append(write_long(len(raw)))
        append(raw)
    append(_END)
    return b"".join(parts)


def _groups(items: Sequence[Sequence[str]], seen: _Encoded, texts: _Encoded) -> bytes:
    if not items:
        return _END
    parts = [write_long(len(items))]
    append = parts.append
    get = seen.get
    for group in items:
        hashable = type(group) is tuple  # what Columns holds; a list is encoded every time
        encoded = get(group) if hashable else None
        if encoded is None:
            encoded = _strings(group, texts)
            if hashable:
                seen.remember(group, encoded)
        append(encoded)
    append(_END)
    return b"".join(parts)


def _longs(items: Sequence[int]) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, _LONGS, items)
    return buf.getvalue()


class ContributionsWriter:
    """Encodes bodies; one per process, so its caches last across messages."""

    def __init__(self) -> None:
        self._columns = {
            name: _Encoded()
            for name in ("customer", "source", "subject", "type", "meter", "aggregation", "value")
        }
        self._groups = _Encoded()

    def encode(self, body: Mapping[str, Any]) -> bytes:
        """``ATTRIBUTED.encode(body)``, faster: header, then the Avro body."""
        seen = self._columns
        progress = body.get("progress") or ()
        parts = [
            _HEADER,
            _string(body["catalog_version"]),
            write_long(body["source_partition"]),
            _strings(body["customer"], seen["customer"]),
            _blobs(list(map(str.encode, body["id"]))),
            _strings(body["source"], seen["source"]),
            _strings(body["subject"], seen["subject"]),
            _strings(body["type"], seen["type"]),
            _longs(body["time"]),
            _blobs(body["digest"]),
            _longs(body["event"]),
            _strings(body["meter"], seen["meter"]),
            _strings(body["aggregation"], seen["aggregation"]),
            _groups(body["group"], self._groups, seen["value"]),
            _strings(body["value"], seen["value"]),
        ]
        if progress:
            parts.append(write_long(len(progress)))
            for mark in progress:
                parts.append(write_long(mark["source_partition"]))
                parts.append(write_long(mark["event_time"]))
        parts.append(_END)
        return b"".join(parts)


class WireContributions(NamedTuple):
    """What windowing reads of a body: per event and per contribution columns."""

    source_partition: int
    customer: list[str]
    time: list[int]
    """Microseconds since the epoch."""
    digest: list[bytes]
    event: list[int]
    meter: list[str]
    aggregation: list[str]
    group: list[tuple[str, ...]]
    value: list[str]
    progress: list[tuple[int, int]]
    """(source partition, greatest event time in microseconds)."""


def read_contributions(payload: bytes) -> WireContributions:
    """The body of one ``usage.attributed`` message; :class:`WireError` if it is not one."""
    if not payload.startswith(_HEADER):
        raise WireError(
            f"not an AttributedContributions body (fingerprint {fingerprint_of(payload).hex()})"
        )
    try:
        n, pos = _length(payload, 10)
        pos += n  # catalog_version: windowing folds by the aggregation each row carries
        source_partition, pos = read_long(payload, pos)
        customer: list[str] = []
        pos = _read_strings(payload, pos, customer)
        for _ in range(4):  # id, source, subject, type: the sink lands them, windows don't
            pos = _skip_strings(payload, pos)
        time, pos = _read_longs(payload, pos)
        digest: list[bytes] = []
        pos = _read_blobs(payload, pos, digest)
        event, pos = _read_longs(payload, pos)
        meter: list[str] = []
        pos = _read_strings(payload, pos, meter)
        aggregation: list[str] = []
        pos = _read_strings(payload, pos, aggregation)
        group: list[tuple[str, ...]] = []
        pos = _read_groups(payload, pos, group)
        value: list[str] = []
        pos = _read_strings(payload, pos, value)
        progress: list[tuple[int, int]] = []
        pos = _read_progress(payload, pos, progress)
    except WireError:
        raise
    except IndexError:
        raise WireError("the body ends in the middle of a value") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise WireError(str(exc)) from None
    if pos != len(payload):  # a length past the end also lands here: slices don't check
        raise WireError(f"the body is {len(payload)} bytes, its values add up to {pos}")
    return WireContributions(
        source_partition, customer, time, digest, event, meter, aggregation, group, value, progress
    )


_AGGREGATIONS = {a.value: a for a in Aggregation}


def contribution_pairs(
    message: WireContributions, progress: SourceWatermarks
) -> list[tuple[str, Contribution]]:
    """The (customer, contribution) pairs of a message, in order; records its progress
    (the events' own, then the marks it carries). Per contribution: the window stage's
    innermost loop, so it sits here with the reader, in the compiled hot path."""
    times = [EPOCH + timedelta(microseconds=us) for us in message.time]
    if times:
        progress.observe(message.source_partition, max(times))
    customers, digests = message.customer, message.digest
    unique = Aggregation.UNIQUE_COUNT
    out: list[tuple[str, Contribution]] = []
    for e, meter, aggregation, group, value in zip(
        message.event, message.meter, message.aggregation, message.group, message.value, strict=True
    ):
        agg = _AGGREGATIONS[aggregation]
        quantity: Decimal | str = value if agg is unique else Decimal(value)
        out.append((customers[e], Contribution(meter, group, quantity, times[e], digests[e], agg)))
    for partition, micros in message.progress:
        progress.observe(partition, EPOCH + timedelta(microseconds=micros))
    return out


def _length(data: bytes, pos: int) -> tuple[int, int]:
    n = data[pos]
    if n < 0x80 and not n & 1:  # a length under 64: one byte, the common case
        return n >> 1, pos + 1
    n, pos = read_long(data, pos)
    if n < 0 or pos + n > len(data):
        raise WireError(f"a length of {n} bytes at offset {pos} runs past the body")
    return n, pos


def _block(data: bytes, pos: int) -> tuple[int, int]:
    """The item count of the next array block (0: the array ends)."""
    count, pos = read_long(data, pos)
    if count < 0:  # a block that also states its size in bytes
        count = -count
        _, pos = read_long(data, pos)
    return count, pos


def _read_strings(data: bytes, pos: int, out: list[str]) -> int:
    raw: list[bytes] = []
    pos = _read_blobs(data, pos, raw)
    out.extend(map(bytes.decode, raw))
    return pos


def _read_blobs(data: bytes, pos: int, out: list[bytes]) -> int:
    """An array of bytes (or of strings, not yet decoded). Lengths under 64 (one byte)
    are read inline: the call, not the bytes, is what each item cost."""
    append = out.append
    count, pos = _block(data, pos)
    while count:
        for _ in range(count):
            n = data[pos]
            if n < 0x80 and not n & 1:
                pos += 1
                n >>= 1
            else:
                n, pos = _length(data, pos)
            end = pos + n
            append(data[pos:end])
            pos = end
        count, pos = _block(data, pos)
    return pos


def _skip_strings(data: bytes, pos: int) -> int:
    count, pos = _block(data, pos)
    while count:
        for _ in range(count):
            n = data[pos]
            if n < 0x80 and not n & 1:
                pos += 1 + (n >> 1)
            else:
                n, pos = _length(data, pos)
                pos += n
        count, pos = _block(data, pos)
    return pos


def _read_groups(data: bytes, pos: int, out: list[tuple[str, ...]]) -> int:
    """An array of string arrays. A group that is one block of short strings (nearly
    every one) is found by its bytes, so each distinct group is decoded once."""
    append = out.append
    made: dict[bytes, tuple[str, ...]] = {}
    count, pos = _block(data, pos)
    while count:
        for _ in range(count):
            items, end = data[pos], -1
            if items < 0x80 and not items & 1:  # one block of under 64 items, or none
                end = pos + 1
                for _ in range(items >> 1):
                    n = data[end]
                    if n >= 0x80 or n & 1:
                        end = -1
                        break
                    end += 1 + (n >> 1)
                if items and end >= 0:
                    end = end + 1 if data[end] == 0 else -1
            if end < 0:  # long strings or several blocks: read it the long way
                texts: list[str] = []
                pos = _read_strings(data, pos, texts)
                append(tuple(texts))
                continue
            raw = data[pos:end]
            group = made.get(raw)
            if group is None:
                texts = []
                _read_strings(data, pos, texts)
                group = made[raw] = tuple(texts)
            append(group)
            pos = end
        count, pos = _block(data, pos)
    return pos


def _read_longs(data: bytes, pos: int) -> tuple[list[int], int]:
    if data[pos] == 0:  # an empty array: the common case for contributions of no meter
        return [], pos + 1
    buf = io.BytesIO(data)
    buf.seek(pos)
    try:
        items = fastavro.schemaless_reader(buf, _LONGS, None)
    except Exception as exc:  # fastavro's own errors for truncated varints
        raise WireError(f"a long array at offset {pos}: {exc!r}") from None
    assert isinstance(items, list)
    return items, buf.tell()


def _read_progress(data: bytes, pos: int, out: list[tuple[int, int]]) -> int:
    count, pos = _block(data, pos)
    while count:
        for _ in range(count):
            partition, pos = read_long(data, pos)
            micros, pos = read_long(data, pos)
            out.append((partition, micros))
        count, pos = _block(data, pos)
    return pos
