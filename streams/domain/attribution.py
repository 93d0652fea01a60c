"""Attribution: which customer each accepted event is billed to, under one catalog.

Pure: the catalog decides, at the event's own time (a key that moves between
customers bills each one for its own period). Events no customer claims are parked,
never dropped, and attributed when a later catalog maps their subject.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from streams.domain.catalog import Catalog
from streams.domain.metering import contributions
from streams.domain.meters import Aggregation
from streams.domain.usage import UsageEvent
from streams.domain.watermarks import EPOCH

MICROSECOND = timedelta(microseconds=1)


@dataclass(slots=True)
class Attribution:
    attributed: list[dict[str, Any]] = field(default_factory=list)
    """Attributed items (``customer``, ``catalog_version``, ``source_partition``, ``event``),
    in input order: the window stage relies on each source partition staying in order."""
    parked: list[dict[str, Any]] = field(default_factory=list)
    """Event records whose subject no customer owned at the event's time."""


def attribute(
    records: Iterable[dict[str, Any]], catalog: Catalog, source_partition: int = 0
) -> Attribution:
    out = Attribution()
    version = catalog.version
    customer_for = catalog.customer_for
    for record in records:
        customer = customer_for(record["subject"], record["time"])
        if customer is None:
            out.parked.append(record)
        else:
            out.attributed.append(
                {
                    "customer": customer,
                    "catalog_version": version,
                    "source_partition": source_partition,
                    "event": record,
                }
            )
    return out


COLUMN_NAMES = (  # the record's columns, in its schema's order
    "customer",
    "id",
    "source",
    "subject",
    "type",
    "time",
    "digest",
    "event",
    "meter",
    "aggregation",
    "group",
    "value",
)


class Columns:
    """One ``AttributedContributions`` body (avro/attributed_usage.v2.avsc) being built.

    Per event: who is billed and what identifies the event; per contribution: what it
    adds to which meter. Columns instead of one record per event: a batch encodes and
    decodes without building a dict per event, which is what the hot path paid for.
    """

    def __init__(self) -> None:
        self.customer: list[str] = []
        self.id: list[str] = []
        self.source: list[str] = []
        self.subject: list[str] = []
        self.type: list[str] = []
        self.time: list[datetime] = []
        self.digest: list[bytes] = []
        self.event: list[int] = []
        self.meter: list[str] = []
        self.aggregation: list[Aggregation] = []
        self.group: list[tuple[str, ...]] = []
        self.value: list[str] = []

    def __len__(self) -> int:
        return len(self.customer)

    def add(self, customer: str, event: UsageEvent, digest: bytes, meters: Any) -> None:
        index = len(self.customer)
        self.customer.append(customer)
        self.id.append(event.id)
        self.source.append(event.source)
        self.subject.append(event.subject)
        self.type.append(event.type)
        self.time.append(event.time)
        self.digest.append(digest)
        if not meters:
            return
        for c in contributions(event, meters, digest):
            self.event.append(index)
            self.meter.append(c.meter)
            self.aggregation.append(c.aggregation)  # a StrEnum: Avro writes its text
            self.group.append(c.group)  # a tuple: Avro writes any sequence as an array
            value = c.value
            self.value.append(value if type(value) is str else str(value))

    def bodies(
        self, catalog_version: str, source_partition: int, size: int
    ) -> list[dict[str, Any]]:
        """The record in bodies of at most ``size`` events each, in order."""
        if len(self) <= size:
            return [self.body(catalog_version, source_partition)]
        out = []
        for start in range(0, len(self), size):
            part = Columns()
            end = start + size
            for name in ("customer", "id", "source", "subject", "type", "time", "digest"):
                setattr(part, name, getattr(self, name)[start:end])
            lo = bisect_left(self.event, start)
            hi = bisect_left(self.event, end)
            part.event = [e - start for e in self.event[lo:hi]]
            for name in ("meter", "aggregation", "group", "value"):
                setattr(part, name, getattr(self, name)[lo:hi])
            out.append(part.body(catalog_version, source_partition))
        return out

    def body(self, catalog_version: str, source_partition: int) -> dict[str, Any]:
        """The Avro record, without ``progress`` (the sender adds it)."""
        body: dict[str, Any] = {
            "catalog_version": catalog_version,
            "source_partition": source_partition,
        }
        for name in COLUMN_NAMES:
            body[name] = getattr(self, name)
        body["time"] = [(t - EPOCH) // MICROSECOND for t in self.time]
        return body


@dataclass(slots=True)
class Routed:
    by_target: dict[int, Columns] = field(default_factory=dict)
    """Target partition of ``usage.attributed`` -> the attributed events bound there."""
    parked: list[int] = field(default_factory=list)
    """Indexes (into the input) of events whose subject no customer owned at their time."""


def route(
    events: Sequence[UsageEvent],
    digests: Sequence[bytes],
    catalog: Catalog,
    target: Callable[[str], int],
) -> Routed:
    """Attribute accepted records and reduce them to their meter contributions, per target.

    ``digests[i]`` is the de-duplication digest of ``events[i]`` (ingest computed it);
    ``target`` maps a customer to its partition. Input order is kept within each target.
    """
    out = Routed()
    customer_for = catalog.customer_for
    by_type = catalog.meter_index.by_type
    by_target = out.by_target
    for i, event in enumerate(events):
        customer = customer_for(event.subject, event.time)
        if customer is None:
            out.parked.append(i)
            continue
        t = target(customer)
        columns = by_target.get(t)
        if columns is None:
            columns = by_target[t] = Columns()
        columns.add(customer, event, digests[i], by_type.get(event.type))
    return out
