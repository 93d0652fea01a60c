"""Avro object container files built from message bodies, for ClickHouse's own Avro reader.

Every topic the sink lands is Avro already. Decoding each event in Python only to hand
clickhouse-connect columns it encodes again cost the sink most of its CPU; instead the
sink wraps the bodies it consumed in a container file (one header, one block of
records) and lets the engine read them. Nothing here looks inside an event: a record
is a body as received, optionally preceded by a few fields the sink adds (Avro
records are their fields' encodings, concatenated). Pure bytes, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from streams.wire.varint import write_long

Landed = tuple[tuple[bytes | memoryview, ...], int]
"""One container record's bytes (in pieces) and how many table rows it yields."""

MAGIC = b"Obj\x01"
SYNC = b"railyard-sink-16"
"""The 16-byte marker closing each block; any value works as long as the header repeats it."""


def _string(s: bytes) -> bytes:
    return write_long(len(s)) + s


def header(schema: dict[str, Any]) -> bytes:
    """Container header: magic, metadata map (schema, null codec) and the sync marker."""
    text = json.dumps(schema, separators=(",", ":")).encode()
    meta = (
        write_long(2)
        + _string(b"avro.schema")
        + _string(text)
        + _string(b"avro.codec")
        + _string(b"null")
        + write_long(0)
    )
    return MAGIC + meta + SYNC


def container(
    schema: dict[str, Any], records: int, parts: Sequence[bytes | memoryview]
) -> list[bytes | memoryview]:
    """The chunks of one container file whose single block holds ``records`` records,
    encoded in ``parts`` (written out as they are, never joined into one copy)."""
    size = sum(len(p) for p in parts)
    return [header(schema), write_long(records), write_long(size), *parts, SYNC]


def wrap_single(body: bytes | memoryview) -> bytes:
    """A one-item Avro array holding ``body``: a single event read as a batch of one."""
    return b"".join((b"\x02", body, b"\x00"))
