"""Sink writers for the metering topics (attribution, windows, late usage, catalog)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from itertools import repeat
from typing import Any

from confluent_kafka import Message

from connectors.kafka.consumed import value_of
from streams.domain.catalog import Catalog
from streams.wire.codec import UsageCodec, load_schema
from streams.wire.container import Landed
from streams.wire.records import ATTRIBUTED, ATTRIBUTED_V1, LATE, WINDOWS, WINDOWS_V1, inline_event
from streams.wire.varint import read_long


def _body_as_record(
    msg: Message, header: bytes, rows: Callable[[memoryview], int]
) -> Landed | None:
    """A single-object body as one container record of its own schema, as it is."""
    payload = msg.value()
    if not payload or not payload.startswith(header):
        return None
    body = memoryview(payload)[len(header) :]
    return (body,), rows(body)


def _kafka_time(msg: Message) -> datetime:
    return datetime.fromtimestamp(msg.timestamp()[1] / 1000, UTC)


class AttributedWriter:
    """Who each event is billed to; the event itself is landed from ``usage.accepted``."""

    table = "usage_attribution_raw"
    columns = ("customer", "catalog_version", "id", "source", "type", "subject", "time")

    def rows(self, msg: Message) -> Iterable[Sequence[Any]]:
        payload = value_of(msg)
        if payload.startswith(ATTRIBUTED_V1.header):  # written before version 2
            for item in ATTRIBUTED_V1.decode(payload)["items"]:
                e = item["event"]
                yield (
                    item["customer"],
                    item["catalog_version"],
                    e["id"],
                    e["source"],
                    e["type"],
                    e["subject"],
                    e["time"],
                )
            return
        m = ATTRIBUTED.decode(payload)
        version = m["catalog_version"]
        yield from zip(
            m["customer"], repeat(version), m["id"], m["source"], m["type"], m["subject"], m["time"]
        )

    schema: dict[str, Any] = inline_event(load_schema("attributed_usage.v2.avsc"))

    def record(self, msg: Message) -> Landed | None:
        return _body_as_record(msg, ATTRIBUTED.header, self._rows)

    @staticmethod
    def _rows(body: memoryview) -> int:
        """Events in the body: skip catalog_version (a string) and source_partition."""
        length, pos = read_long(body, 0)
        _, pos = read_long(body, pos + length)
        return abs(read_long(body, pos)[0])

    def insert_sql(self, source: str) -> str:
        return (
            f"INSERT INTO {self.table} ({', '.join(self.columns)}) "
            "SELECT c, v, i, s, t, sj, tm FROM (SELECT customer, catalog_version AS v, id, "
            f"source, type, subject, time FROM {source}) "
            "ARRAY JOIN customer AS c, id AS i, source AS s, type AS t, subject AS sj, time AS tm"
        )


class UnattributedWriter:
    """Parking records; a tombstone (no value) marks the event as attributed since."""

    table = "unattributed_raw"
    columns = (
        "event_key",
        "id",
        "source",
        "type",
        "subject",
        "time",
        "values",
        "dimensions",
        "resolved",
        "changed_at",
    )

    def __init__(self) -> None:
        self.codec = UsageCodec()

    def rows(self, msg: Message) -> Iterable[Sequence[Any]]:
        key = (msg.key() or b"").decode()
        at = _kafka_time(msg)
        value = msg.value()
        if value is None:
            yield (key, "", "", "", "", at, {}, {}, 1, at)
            return
        for e in self.codec.decode_records(value):
            yield (
                key,
                e["id"],
                e["source"],
                e["type"],
                e["subject"],
                e["time"],
                e["values"],
                e["dimensions"],
                0,
                at,
            )


class WindowsWriter:
    """Window updates with their partial state (``sum``, ``distinct``, ``latest_*``) that
    the exact views merge; version 1 carries none, so those columns keep their defaults.
    ``latest_digest`` lands as lowercase hex, like ``late_usage.event_key``, which orders
    the same as the bytes."""

    table = "usage_windows_raw"
    columns = (
        "customer",
        "meter",
        "aggregation",
        "group_by",
        "group_values",
        "window_start",
        "window_end",
        "value",
        "revision",
        "is_correction",
        "sum",
        "distinct_values",
        "latest_time",
        "latest_digest",
    )

    def rows(self, msg: Message) -> Iterable[Sequence[Any]]:
        payload = value_of(msg)
        codec = WINDOWS_V1 if payload.startswith(WINDOWS_V1.header) else WINDOWS
        for u in codec.decode(payload)["updates"]:
            digest = u.get("latest_digest")
            yield (
                u["customer"],
                u["meter"],
                u["aggregation"],
                u["group_by"],
                u["group"],
                u["window_start"],
                u["window_end"],
                u["value"],
                u["revision"],
                int(u["is_correction"]),
                u.get("sum"),
                u.get("distinct", []),
                u.get("latest_time"),
                None if digest is None else digest.hex(),
            )

    schema: dict[str, Any] = load_schema("window_update.v2.avsc")

    def record(self, msg: Message) -> Landed | None:
        """Version 2 through the engine's Avro reader; version 1 (a topic written before it)
        goes by :meth:`rows`."""
        return _body_as_record(msg, WINDOWS.header, lambda body: abs(read_long(body, 0)[0]))

    def insert_sql(self, source: str) -> str:
        fields = (
            "customer",
            "meter",
            "aggregation",
            "group_by",
            "group",
            "window_start",
            "window_end",
            "value",
            "revision",
            "is_correction",
            "sum",
        )
        selected = [f"u.{f}" for f in fields]
        # `distinct` is a keyword: name the tuple element rather than dot into it
        selected += ["tupleElement(u, 'distinct')", "u.latest_time", "lower(hex(u.latest_digest))"]
        return (
            f"INSERT INTO {self.table} ({', '.join(self.columns)}) "
            f"SELECT {', '.join(selected)} "
            f"FROM (SELECT updates FROM {source}) ARRAY JOIN updates AS u"
        )


class LateWriter:
    table = "late_usage_raw"
    columns = (
        "customer",
        "meter",
        "aggregation",
        "group_by",
        "group_values",
        "window_start",
        "event_time",
        "value",
        "event_key",
        "watermark",
        "reason",
    )

    def rows(self, msg: Message) -> Iterable[Sequence[Any]]:
        for i in LATE.decode(value_of(msg))["items"]:
            yield (
                i["customer"],
                i["meter"],
                i["aggregation"],
                i["group_by"],
                i["group"],
                i["window_start"],
                i["event_time"],
                i["value"],
                i["digest"].hex(),
                i["watermark"],
                i["reason"],
            )


class CatalogWriter:
    """Every version applied (``version:*`` keys) and each change of the one in force."""

    table = "catalog_versions"
    columns = ("version", "document", "applied_at")

    def __init__(self) -> None:
        self.applications: list[tuple[str, datetime, int]] = []

    def rows(self, msg: Message) -> Iterable[Sequence[Any]]:
        key = (msg.key() or b"").decode()
        value = msg.value()
        if value is None:
            return
        document = value.decode()
        if key.startswith("version:"):
            yield (key.removeprefix("version:"), document, _kafka_time(msg))


class CatalogApplicationsWriter:
    table = "catalog_applications"
    columns = ("version", "applied_at", "kafka_offset")

    def rows(self, msg: Message) -> Iterable[Sequence[Any]]:
        value = msg.value()
        if (msg.key() or b"") == b"current" and value is not None:
            yield (Catalog.from_json(value).version, _kafka_time(msg), msg.offset())
