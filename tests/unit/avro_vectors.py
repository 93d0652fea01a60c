"""Bytes as any Avro library writes them: the test side of the wire contract."""

from __future__ import annotations

import io
from typing import Any

import fastavro

from streams.domain.usage import UsageEvent
from streams.wire.codec import SINGLE_OBJECT_MAGIC, schema_fingerprint


def single_object(schema: dict[str, Any], record: dict[str, Any]) -> bytes:
    """What any Avro library writes for ``record`` under ``schema`` (single-object encoding)."""
    buf = io.BytesIO()
    buf.write(SINGLE_OBJECT_MAGIC + schema_fingerprint(schema))
    fastavro.schemaless_writer(buf, fastavro.parse_schema(schema), record)
    return buf.getvalue()


def v1_record(event: UsageEvent) -> dict[str, Any]:
    """The event as a version-1 producer wrote it (no dataschema, no specversion)."""
    record = event._asdict()
    del record["dataschema"], record["specversion"]
    return record
