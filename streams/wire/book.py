"""The rate stage's records: window and late batches in, billing-book entries out and back.

Pure translation between Avro records and the billing book's changes, so the agent
only moves bytes. Every record that cannot be read raises :class:`UnreadableRecord`
with the reason; the agent dead-letters it and goes on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from streams.domain.billing_book import (
    Forget,
    JournalEntry,
    LateChange,
    Seal,
    WatermarkChange,
    WindowChange,
)
from streams.domain.errors import RailyardError
from streams.domain.meters import Aggregation
from streams.domain.partials import Latest, Partial
from streams.domain.rating.assemble import LateQuantity
from streams.wire.records import BOOK, LATE, WINDOWS, WINDOWS_V1

_AGGREGATIONS = {a.value: a for a in Aggregation}


class UnreadableRecord(RailyardError):
    """A record the rate stage cannot fold in: dead-lettered with this reason."""


def window_changes(payload: bytes) -> tuple[list[WindowChange], datetime]:
    """A window batch's changes (partials) and the watermark it carries."""
    try:
        v1 = payload.startswith(WINDOWS_V1.header)
        batch = (WINDOWS_V1 if v1 else WINDOWS).decode(payload)
        changes = [_window(u) for u in batch["updates"]]
    except UnreadableRecord:
        raise
    except Exception as exc:
        raise UnreadableRecord(f"not a window update batch: {exc}") from exc
    return [c for c in changes if c is not None], batch["watermark"]


def _window(u: dict[str, Any]) -> WindowChange | None:
    aggregation = _AGGREGATIONS.get(u["aggregation"])
    if aggregation is None:
        return None  # a meter no catalog knew when it was measured: nothing can rate it
    latest = None
    if u.get("latest_time") is not None:
        latest = Latest(u["latest_time"], u["latest_digest"] or b"", u["value"])
    elif aggregation is Aggregation.LATEST:  # version 1: the window's value, at its start
        latest = Latest(u["window_start"], b"", u["value"])
    distinct = u.get("distinct", ())
    if aggregation is Aggregation.UNIQUE_COUNT and len(distinct) != int(u["value"]):
        # version 1 carried only the count: stand in one value per counted event
        distinct = [f"\x00{u['window_start'].isoformat()}#{i}" for i in range(int(u["value"]))]
    partial = Partial.of_window(
        aggregation, u["value"], u["revision"], u.get("sum"), distinct, latest
    )
    return WindowChange(
        u["customer"], u["meter"], tuple(u["group"]), u["window_start"], partial, u["revision"]
    )


def late_changes(payload: bytes) -> list[LateChange]:
    """A late batch's items, each its event's partial (every aggregation, text included)."""
    try:
        items = LATE.decode(payload)["items"]
        return [_late(i) for i in items]
    except UnreadableRecord:
        raise
    except Exception as exc:
        raise UnreadableRecord(f"not a late usage batch: {exc}") from exc


def _late(i: dict[str, Any]) -> LateChange:
    aggregation = _AGGREGATIONS.get(i["aggregation"])
    if aggregation is None:
        raise UnreadableRecord(f"late usage of meter {i['meter']!r}: no aggregation")
    value: Decimal | str = i["value"]
    if aggregation is not Aggregation.UNIQUE_COUNT:
        try:
            value = Decimal(i["value"])
        except InvalidOperation:
            raise UnreadableRecord(
                f"late usage of {aggregation} meter {i['meter']!r} is not a number: {i['value']!r}"
            ) from None
    partial = Partial.of_event(aggregation, value, i["event_time"], i["digest"])
    usage = LateQuantity(i["meter"], tuple(i["group"]), i["event_time"], partial)
    return LateChange(i["customer"], i["digest"], usage)


# -- billing.book --------------------------------------------------------------------------


def entry_key(entry: JournalEntry) -> bytes:
    """The compaction key: one live record per window, per late event, and the watermark."""
    match entry:
        case WindowChange():
            parts = ["w", entry.customer, entry.meter, *entry.group]
            return "\x00".join([*parts, entry.window_start.isoformat()]).encode()
        case LateChange():
            head = "\x00".join(("l", entry.customer, entry.usage.meter, "")).encode()
            return head + entry.digest
        case WatermarkChange():
            return b"watermark"
        case Seal():
            return b"s\x00" + entry.customer.encode()
        case Forget():
            return entry_key(entry.entry)


def encode_entry(entry: JournalEntry, watermark: datetime) -> bytes | None:
    """The entry's record; None (a tombstone) for what the book forgot."""
    record: dict[str, Any] = {"watermark": watermark, "digest": b""}
    match entry:
        case Forget():
            return None
        case Seal():
            record |= {
                "kind": "seal",
                "customer": entry.customer,
                "at": entry.through,
                "revision": entry.revision,
            }
        case WindowChange():
            p = _as_partial(entry.value)
            record |= {
                "kind": "window",
                "customer": entry.customer,
                "meter": entry.meter,
                "aggregation": str(p.aggregation),
                "group": list(entry.group),
                "at": entry.window_start,
                "value": str(p.quantity()),
                "revision": entry.revision,
                "sum": str(p.total) if p.aggregation in _SUMMED else None,
                "distinct": sorted(p.distinct),
                "latest_time": p.latest.time if p.latest else None,
                "digest": p.latest.digest if p.latest else b"",
            }
        case LateChange():
            p = _as_partial(entry.usage.quantity)
            one = next(iter(p.distinct)) if p.distinct else None
            record |= {
                "kind": "late",
                "customer": entry.customer,
                "meter": entry.usage.meter,
                "aggregation": str(p.aggregation),
                "group": list(entry.usage.group),
                "at": entry.usage.time,
                "value": one if one is not None else str(p.total),
                "digest": entry.digest,
            }
        case WatermarkChange():
            record |= {"kind": "watermark", "watermark": entry.watermark}
    return BOOK.encode(record)


@dataclass(frozen=True)
class Mark:
    """Where a checkpoint of the book stands: every change from the input records before
    these offsets (of the same partition) is in ``billing.book``."""

    windows_offset: int = 0
    late_offset: int = 0


MARK_KEY = b"mark"


def encode_mark(mark: Mark, watermark: datetime) -> bytes:
    return BOOK.encode(
        {
            "kind": "mark",
            "watermark": watermark,
            "digest": b"",
            "windows_offset": mark.windows_offset,
            "late_offset": mark.late_offset,
        }
    )


def live_entries(records: Iterable[tuple[bytes, bytes | None]]) -> tuple[list[JournalEntry], Mark]:
    """The book's state from ``billing.book`` read in order: the newest record per key, and
    nothing for a key whose newest record is a tombstone (compaction may not have run);
    and the last checkpoint's mark (none yet: from the start)."""
    live: dict[bytes, bytes] = {}
    for key, value in records:
        if value is None:
            live.pop(key, None)
        else:
            live[key] = value
    mark = Mark()
    if MARK_KEY in live:
        r = BOOK.decode(live.pop(MARK_KEY))
        mark = Mark(r["windows_offset"], r["late_offset"])
    return [decode_entry(v) for v in live.values()], mark


def decode_entry(payload: bytes) -> JournalEntry:
    r = BOOK.decode(payload)
    match r["kind"]:
        case "watermark":
            return WatermarkChange(r["watermark"])
        case "seal":
            return Seal(r["customer"], r["at"], r["revision"])
        case "late":
            item = {**r, "event_time": r["at"], "digest": r["digest"]}
            return _late(item)
        case "window":
            aggregation = Aggregation(r["aggregation"])
            value = Decimal(r["value"]) if aggregation is not Aggregation.UNIQUE_COUNT else 0
            latest = None
            if r["latest_time"] is not None:
                latest = Latest(r["latest_time"], r["digest"], Decimal(r["value"]))
            total = Decimal(r["sum"]) if r["sum"] is not None else None
            partial = Partial.of_window(
                aggregation, Decimal(value), r["revision"], total, r["distinct"], latest
            )
            group = tuple(r["group"])
            return WindowChange(r["customer"], r["meter"], group, r["at"], partial, r["revision"])
    raise UnreadableRecord(f"unknown billing.book entry kind {r['kind']!r}")


_SUMMED = (Aggregation.SUM, Aggregation.AVG)


def _as_partial(value: Partial | Decimal | str) -> Partial:
    if isinstance(value, Partial):
        return value
    raise TypeError(f"the book persists partials, not bare values ({value!r})")
