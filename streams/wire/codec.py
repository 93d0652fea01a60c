"""Wire formats of the usage contract: the schemas in ``avro/`` and how bytes carry them.

Three framings are read from the ``usage`` topic, told apart by the first byte:

* ``C3 01`` + 8-byte CRC-64-AVRO fingerprint + body: Avro single-object encoding,
  the default; any Avro library can decode it given the ``.avsc`` files.
* ``00`` + 4-byte schema id + body: Confluent Schema Registry framing, written when
  a registry URL is configured.
* ``{``: a CloudEvents JSON object, for producers that do not speak Avro.

A body is either one ``UsageEvent`` or a ``UsageBatch`` (many events of one subject),
which is what Railyard's own producer sends to amortise per-message cost.
Writer schemas of every released version stay readable: the reader schema is the
newest one and fastavro resolves the differences.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form
from pydantic import SecretStr

from streams.domain.cloudevents import from_json
from streams.domain.errors import RailyardError
from streams.domain.rejections import Reason, Rejection
from streams.domain.usage import UsageEvent
from streams.wire.usage_reader import WireEvents, read_usage
from streams.wire.varint import WireError

AVRO_DIR = Path(__file__).resolve().parents[2] / "avro"
SINGLE_OBJECT_MAGIC = b"\xc3\x01"
FINGERPRINT_SIZE = 8
HEADER_SIZE = len(SINGLE_OBJECT_MAGIC) + FINGERPRINT_SIZE
"""Avro single-object encoding: the marker, the writer schema's CRC-64-AVRO fingerprint
(little-endian), then the body."""
CONFLUENT_MAGIC = 0
CONFLUENT_HEADER_SIZE = 5
"""Confluent wire format: a zero byte, the registry's 4-byte schema id, then the body."""


def fingerprint_of(payload: bytes) -> bytes:
    """The schema fingerprint of a single-object encoded payload."""
    return payload[len(SINGLE_OBJECT_MAGIC) : HEADER_SIZE]


def load_schema(name: str) -> dict[str, Any]:
    with open(AVRO_DIR / name) as f:
        return json.load(f)  # type: ignore[no-any-return]


def batch_schema(event_schema: dict[str, Any]) -> dict[str, Any]:
    """The UsageBatch record around a given UsageEvent version (inlined, so it is self-contained)."""
    batch = load_schema("usage_batch.v1.avsc")
    batch["fields"][0]["type"]["items"] = event_schema
    return batch


EVENT_VERSIONS: dict[int, dict[str, Any]] = {
    1: load_schema("usage_event.v1.avsc"),
    2: load_schema("usage_event.v2.avsc"),
}
CURRENT_VERSION = max(EVENT_VERSIONS)
DEAD_LETTER_SCHEMA = fastavro.parse_schema(load_schema("dead_letter.v1.avsc"))


def schema_fingerprint(schema: dict[str, Any]) -> bytes:
    """8-byte little-endian CRC-64-AVRO fingerprint of the schema's Parsing Canonical Form."""
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"))


@dataclass(frozen=True)
class WriterSchema:
    """A schema some producer may have written with; ``is_batch`` says which record."""

    parsed: Any
    is_batch: bool
    version: int


class Undecodable(Exception):
    """Bytes that cannot become usage events; carries the dead-letter reason."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.rejection = Rejection(reason, detail)


Decoded = UsageEvent | Rejection


class UsageCodec:
    """Encodes usage for the ``usage`` topic and decodes whatever a producer sent there.

    ``registry`` (optional) resolves Confluent schema ids; without it, Confluent-framed
    messages are rejected as ``unknown_schema``.
    """

    def __init__(self, registry: SchemaRegistryFraming | None = None) -> None:
        self.registry = registry
        self._readers = {
            False: fastavro.parse_schema(EVENT_VERSIONS[CURRENT_VERSION]),
            True: fastavro.parse_schema(batch_schema(EVENT_VERSIONS[CURRENT_VERSION])),
        }
        self._by_fingerprint: dict[bytes, WriterSchema] = {}
        for version, schema in EVENT_VERSIONS.items():
            for is_batch, s in ((False, schema), (True, batch_schema(schema))):
                parsed = fastavro.parse_schema(s)
                self._by_fingerprint[schema_fingerprint(s)] = WriterSchema(
                    parsed, is_batch, version
                )
        self._current = {
            is_batch: (fp, w)
            for fp, w in self._by_fingerprint.items()
            if w.version == CURRENT_VERSION
            for is_batch in (w.is_batch,)
        }

    @classmethod
    def for_settings(cls, registry_url: SecretStr) -> UsageCodec:
        """The codec a deployment reads ``usage`` with (Confluent framing if a registry is set).

        The URL stays a secret (it may carry credentials) until the registry client takes it.
        """
        url = registry_url.get_secret_value()
        return cls(SchemaRegistryFraming.from_url(url) if url else None)

    # -- encoding ---------------------------------------------------------------

    def encode_event(self, event: UsageEvent) -> bytes:
        return self._frame(False, _to_record(event))

    def encode_batch(self, events: Sequence[UsageEvent]) -> bytes:
        return self._frame(True, {"events": [_to_record(e) for e in events]})

    def _frame(self, is_batch: bool, record: dict[str, Any]) -> bytes:
        fp, writer = self._current[is_batch]
        buf = io.BytesIO()
        if self.registry is not None:
            buf.write(self.registry.header(is_batch))
        else:
            buf.write(SINGLE_OBJECT_MAGIC)
            buf.write(fp)
        fastavro.schemaless_writer(buf, writer.parsed, record)
        return buf.getvalue()

    # -- decoding ---------------------------------------------------------------

    def decode_events(self, payload: bytes) -> WireEvents:
        """The events in an Avro payload; raises Undecodable.

        The current layout is read by :mod:`streams.wire.usage_reader` (the hot path);
        older writer schemas are resolved by fastavro (event sizes then unknown).
        """
        writer, start = self._writer(payload)
        if writer.version != CURRENT_VERSION:
            return WireEvents([UsageEvent(**r) for r in self._read(payload, start, writer)], -1)
        try:
            return read_usage(payload, start, writer.is_batch)
        except WireError as exc:
            raise Undecodable(Reason.MALFORMED_PAYLOAD, f"corrupt Avro body: {exc}") from exc

    def decode_records(self, payload: bytes) -> list[dict[str, Any]]:
        """Avro records (dicts shaped like UsageEvent) in the payload; raises Undecodable."""
        writer, start = self._writer(payload)
        return self._read(payload, start, writer)

    def _writer(self, payload: bytes) -> tuple[WriterSchema, int]:
        """The schema the payload was written with, and where its body starts."""
        if payload[:2] == SINGLE_OBJECT_MAGIC:
            if len(payload) < HEADER_SIZE:
                raise Undecodable(Reason.MALFORMED_PAYLOAD, "truncated single-object header")
            writer = self._by_fingerprint.get(fingerprint_of(payload))
            if writer is None:
                raise Undecodable(
                    Reason.UNKNOWN_SCHEMA,
                    f"unknown schema fingerprint {fingerprint_of(payload).hex()}",
                )
            return writer, HEADER_SIZE
        if payload[:1] == b"\x00" and len(payload) >= 5:
            if self.registry is None:
                raise Undecodable(
                    Reason.UNKNOWN_SCHEMA, "Confluent-framed message but no schema registry set"
                )
            schema_id = struct.unpack(">I", payload[1:CONFLUENT_HEADER_SIZE])[0]
            registered = self.registry.writer(schema_id)
            if registered is None:
                raise Undecodable(
                    Reason.UNKNOWN_SCHEMA, f"schema id {schema_id} is not a usage schema"
                )
            return registered, CONFLUENT_HEADER_SIZE
        raise Undecodable(Reason.MALFORMED_PAYLOAD, "neither Avro framing nor a JSON object")

    def _read(self, payload: bytes, start: int, writer: WriterSchema) -> list[dict[str, Any]]:
        buf = io.BytesIO(payload)
        buf.seek(start)
        # Resolution is only needed for an older writer; skipping it doubles decode speed.
        reader = None if writer.version == CURRENT_VERSION else self._readers[writer.is_batch]
        try:
            record = fastavro.schemaless_reader(buf, writer.parsed, reader)
        except Exception as exc:  # fastavro raises many types on corrupt input
            raise Undecodable(Reason.MALFORMED_PAYLOAD, f"corrupt Avro body: {exc!r:.200}") from exc
        if buf.tell() != len(payload):
            raise Undecodable(Reason.MALFORMED_PAYLOAD, "trailing bytes after the Avro body")
        assert isinstance(record, dict)
        return record["events"] if writer.is_batch else [record]

    def is_current(self, payload: bytes) -> bool:
        """Single-object encoded with the newest schema: safe to forward byte for byte."""
        return self.current_layout(payload) is not None

    def current_layout(self, payload: bytes) -> bool | None:
        """For a single-object body in the newest schema: is it a batch? None otherwise.

        The sink hands such bodies to ClickHouse's Avro reader as they are.
        """
        if payload[:2] != SINGLE_OBJECT_MAGIC:
            return None
        writer = self._by_fingerprint.get(fingerprint_of(payload))
        if writer is None or writer.version != CURRENT_VERSION:
            return None
        return writer.is_batch

    def decode(self, payload: bytes) -> list[Decoded]:
        """Every event in the payload, or the rejections that stand in for them."""
        if payload[:1] == b"{":
            return [from_json(payload)]
        try:
            return list(self.decode_events(payload).events)
        except Undecodable as exc:
            return [exc.rejection]


def _to_record(event: UsageEvent) -> dict[str, Any]:
    return event._asdict()


MAX_DEAD_LETTER_ORIGINAL = 256 * 1024
"""Bytes of a rejected original a dead letter carries: well under every producer's request
limit (Faust's is 1 MB), whatever the size of message the usage topic lets in."""


def encode_dead_letter(
    rejection: Rejection,
    *,
    stage: str,
    topic: str,
    partition: int,
    offset: int,
    index: int,
    original: bytes,
    rejected_at: datetime | None = None,
) -> bytes:
    """A dead-letter record (single-object encoded) for ``usage.dlq``.

    An original above :data:`MAX_DEAD_LETTER_ORIGINAL` keeps only its first bytes; the
    detail then gives its size, SHA-256 and where the whole of it stays (its topic,
    partition and offset, until that topic's retention): a dead letter the producer
    cannot send would stop the stage on every restart.
    """
    detail = rejection.detail
    if len(original) > MAX_DEAD_LETTER_ORIGINAL:
        digest = hashlib.sha256(original).hexdigest()
        detail += (
            f" [original: {len(original)} bytes, sha256 {digest}, whole at"
            f" {topic}[{partition}]@{offset}; first {MAX_DEAD_LETTER_ORIGINAL} bytes kept here]"
        )
        original = original[:MAX_DEAD_LETTER_ORIGINAL]
    buf = io.BytesIO()
    buf.write(SINGLE_OBJECT_MAGIC)
    buf.write(schema_fingerprint(load_schema("dead_letter.v1.avsc")))
    fastavro.schemaless_writer(
        buf,
        DEAD_LETTER_SCHEMA,
        {
            "reason": str(rejection.reason),
            "detail": detail,
            "stage": stage,
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "index": index,
            "event_id": rejection.event_id,
            "subject": rejection.subject,
            "original": original,
            "rejected_at": rejected_at or datetime.now(UTC),
        },
    )
    return buf.getvalue()


def decode_dead_letter(payload: bytes) -> dict[str, Any]:
    buf = io.BytesIO(payload)
    buf.seek(HEADER_SIZE)
    record = fastavro.schemaless_reader(buf, DEAD_LETTER_SCHEMA, DEAD_LETTER_SCHEMA)
    assert isinstance(record, dict)
    return record


class SchemaRegistryFraming:
    """Confluent Schema Registry framing: registers the usage schemas, resolves ids.

    ``client`` is a ``confluent_kafka.schema_registry.SchemaRegistryClient`` (or
    anything with ``register_schema`` and ``get_schema``), so the framing itself is
    testable without a registry.
    """

    def __init__(
        self, client: Any, subject: str = "usage-value", retry_delay_s: float = 0.2
    ) -> None:
        from confluent_kafka.schema_registry import Schema

        self._client = client
        self._retry_delay_s = retry_delay_s
        self._subject = subject
        self._ids: dict[bool, int] = {}
        self._writers: dict[int, WriterSchema | None] = {}
        self._schema: Callable[[str], Any] = lambda text: Schema(text, "AVRO")

    @classmethod
    def from_url(cls, url: str) -> SchemaRegistryFraming:  # pragma: no cover - needs a registry
        from confluent_kafka.schema_registry import SchemaRegistryClient

        return cls(SchemaRegistryClient({"url": url}))

    def header(self, is_batch: bool) -> bytes:
        if is_batch not in self._ids:
            event = EVENT_VERSIONS[CURRENT_VERSION]
            schema = batch_schema(event) if is_batch else event
            subject = f"{self._subject}-batch" if is_batch else self._subject
            schema_id = self._client.register_schema(subject, self._schema(json.dumps(schema)))
            self._ids[is_batch] = schema_id
            self._writers[schema_id] = WriterSchema(
                fastavro.parse_schema(schema), is_batch, CURRENT_VERSION
            )
        return struct.pack(">bI", CONFLUENT_MAGIC, self._ids[is_batch])

    def writer(self, schema_id: int, attempts: int = 6) -> WriterSchema | None:
        """The writer schema behind an id; None if it is not a usage schema.

        A registry that does not answer is retried with backoff and then raised as
        :class:`RegistryUnavailable` (retry, never drop): only a definite answer is cached.
        """
        if schema_id not in self._writers:
            for attempt in range(attempts):
                try:
                    text = self._client.get_schema(schema_id).schema_str
                    break
                except Exception as exc:
                    if _is_not_found(exc):
                        self._writers[schema_id] = None
                        return None
                    if attempt == attempts - 1:
                        raise RegistryUnavailable(f"schema registry: {exc}") from exc
                    time.sleep(min(self._retry_delay_s * 2**attempt, 5.0))
            registered = json.loads(text)
            name = str(registered.get("name", "")).rsplit(".", 1)[-1]
            ok = name in ("UsageBatch", "UsageEvent")
            self._writers[schema_id] = (
                WriterSchema(fastavro.parse_schema(registered), name == "UsageBatch", 0)
                if ok
                else None
            )
        return self._writers[schema_id]


class RegistryUnavailable(RailyardError):
    """The schema registry did not answer: retry later, the message is not at fault."""


def _is_not_found(exc: Exception) -> bool:
    code = getattr(exc, "http_status_code", None) or getattr(exc, "status_code", None)
    return code == 404
