"""Codecs for the records stream stages exchange (everything in ``avro/`` besides usage).

All are Avro single-object encoded, like usage, so any Avro client can read every
topic given the ``.avsc`` files; a wrong fingerprint is an error, not a guess.
"""

from __future__ import annotations

import io
from typing import Any

import fastavro

from streams.wire.codec import (
    CURRENT_VERSION,
    EVENT_VERSIONS,
    HEADER_SIZE,
    SINGLE_OBJECT_MAGIC,
    fingerprint_of,
    load_schema,
    schema_fingerprint,
)

_EVENT_NAME = "dev.railyard.usage.UsageEvent"


def inline_event(node: Any) -> Any:
    """Replace references to UsageEvent by the current UsageEvent schema itself."""
    if node == _EVENT_NAME:
        return EVENT_VERSIONS[CURRENT_VERSION]
    if isinstance(node, dict):
        return {k: inline_event(v) for k, v in node.items()}
    if isinstance(node, list):
        return [inline_event(v) for v in node]
    return node


def _without_logical_types(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_logical_types(v) for k, v in node.items() if k != "logicalType"}
    if isinstance(node, list):
        return [_without_logical_types(v) for v in node]
    return node


class RecordCodec:
    """Single-object encoding of one record schema from ``avro/``.

    With ``plain``, logical types are read and written as their underlying Avro type
    (a ``timestamp-micros`` is an int of microseconds): the bytes and the fingerprint
    are the same (the canonical form has no logical types), and fastavro's conversion
    to ``datetime``, the costliest part of decoding a timestamp column, is skipped.
    """

    def __init__(self, schema_file: str, plain: bool = False) -> None:
        schema = inline_event(load_schema(schema_file))
        self.name = schema["name"]
        self._parsed = fastavro.parse_schema(_without_logical_types(schema) if plain else schema)
        self.header = SINGLE_OBJECT_MAGIC + schema_fingerprint(schema)

    def encode(self, record: dict[str, Any]) -> bytes:
        buf = io.BytesIO()
        buf.write(self.header)
        fastavro.schemaless_writer(buf, self._parsed, record)
        return buf.getvalue()

    def decode(self, payload: bytes) -> dict[str, Any]:
        if not payload.startswith(self.header):
            raise ValueError(
                f"not a {self.name} record (fingerprint {fingerprint_of(payload).hex()})"
            )
        buf = io.BytesIO(payload)
        buf.seek(HEADER_SIZE)
        record = fastavro.schemaless_reader(buf, self._parsed, None)
        assert isinstance(record, dict)
        return record


ATTRIBUTED = RecordCodec("attributed_usage.v2.avsc", plain=True)
"""Times are microseconds since the epoch (UTC) as ints, both ways."""
ATTRIBUTED_V1 = RecordCodec("attributed_usage.v1.avsc")
"""Still read (window stage, sink) so a topic written before version 2 drains cleanly."""
WINDOWS = RecordCodec("window_update.v2.avsc")
WINDOWS_V1 = RecordCodec("window_update.v1.avsc")
"""Still read (rate stage, sink) so a topic written before version 2 drains cleanly."""
BOOK = RecordCodec("book_entry.v1.avsc")
LATE = RecordCodec("late_usage.v1.avsc")
INVOICES = RecordCodec("invoice.v1.avsc")
SPEND = RecordCodec("billing_spend.v1.avsc")
CREDIT_EVENTS = RecordCodec("credit_event.v1.avsc")
BILLING_COMMANDS = RecordCodec("billing_command.v1.avsc")
INVOICE_STATUS = RecordCodec("invoice_status.v1.avsc")
INVOICE_DEAD_LETTERS = RecordCodec("invoice_dead_letter.v1.avsc")
