"""The rate stage's records, without a broker: window and late batches in, book entries out
and back, and a book rebuilt from its entries alone rating exactly as the original."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from connectors.files import load_catalog
from streams.domain.billing_book import BillingBook, Seal, WatermarkChange, WindowChange
from streams.domain.meters import Aggregation
from streams.domain.partials import Partial
from streams.wire.book import (
    Mark,
    UnreadableRecord,
    decode_entry,
    encode_entry,
    entry_key,
    late_changes,
    live_entries,
    window_changes,
)
from streams.wire.records import LATE, WINDOWS, WINDOWS_V1

T = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def update(aggregation: Aggregation, value: D, revision: int, **extra: Any) -> dict[str, Any]:
    return {
        "customer": "acme",
        "meter": "m",
        "aggregation": str(aggregation),
        "group_by": ["g"],
        "group": ["x"],
        "window_start": T,
        "window_end": T + HOUR,
        "value": value,
        "revision": revision,
        "is_correction": False,
        **extra,
    }


def late_item(aggregation: Aggregation, value: str, n: int) -> dict[str, Any]:
    return {
        "customer": "acme",
        "meter": "m",
        "aggregation": str(aggregation),
        "group_by": ["g"],
        "group": ["x"],
        "window_start": T - HOUR,
        "event_time": T - HOUR + timedelta(minutes=n),
        "value": value,
        "digest": n.to_bytes(16, "big"),
        "watermark": T,
        "reason": "window_closed",
    }


def test_a_window_batch_carries_each_aggregations_partial() -> None:
    rows = [
        update(Aggregation.UNIQUE_COUNT, D(2), 3, distinct=["u1", "u2"]),
        update(Aggregation.AVG, D("2.5"), 2, sum=D(5)),
        update(Aggregation.LATEST, D(9), 2, latest_time=T, latest_digest=b"d"),
    ]
    changes, watermark = window_changes(WINDOWS.encode({"updates": rows, "watermark": T}))
    assert watermark == T
    assert [c.value.distinct for c in changes][0] == frozenset({"u1", "u2"})  # type: ignore[union-attr]
    assert [c.value.quantity() for c in changes] == [D(2), D("2.5"), D(9)]  # type: ignore[union-attr]


def test_version_one_window_batches_still_drain() -> None:
    old = [update(Aggregation.UNIQUE_COUNT, D(3), 3), update(Aggregation.LATEST, D(8), 2)]
    changes, _ = window_changes(WINDOWS_V1.encode({"updates": old, "watermark": T}))
    assert [c.value.quantity() for c in changes] == [3, 8]  # type: ignore[union-attr]


def test_late_seat_events_are_counted_values_not_numbers() -> None:
    """A late UNIQUE_COUNT event carries a user id: it used to crash the rate stage."""
    items = [late_item(Aggregation.UNIQUE_COUNT, "u877", 1), late_item(Aggregation.SUM, "2.5", 2)]
    changes = late_changes(LATE.encode({"items": items}))
    assert changes[0].usage.quantity.distinct == frozenset({"u877"})  # type: ignore[union-attr]
    assert changes[1].usage.quantity.quantity() == D("2.5")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "payload", [b"", b"\xc3\x01garbage", LATE.header + b"\xff", WINDOWS.header + b"\x02"]
)
def test_unreadable_records_raise_with_a_reason(payload: bytes) -> None:
    with pytest.raises(UnreadableRecord, match="not a"):
        window_changes(payload)
    with pytest.raises(UnreadableRecord, match="not a"):
        late_changes(payload)


def test_a_non_numeric_late_value_of_a_numeric_meter_is_unreadable() -> None:
    with pytest.raises(UnreadableRecord, match="not a number"):
        late_changes(LATE.encode({"items": [late_item(Aggregation.SUM, "u1", 1)]}))


def test_entries_round_trip_and_key_by_what_they_describe() -> None:
    rows = [
        update(a, D(2), 2, distinct=["u1", "u2"], sum=D(4), latest_time=T, latest_digest=b"z")
        for a in Aggregation
    ]
    windows, _ = window_changes(WINDOWS.encode({"updates": rows, "watermark": T}))
    late = late_changes(LATE.encode({"items": [late_item(Aggregation.UNIQUE_COUNT, "u9", 1)]}))
    for entry in [*windows, *late, WatermarkChange(T)]:
        assert decode_entry(encode_entry(entry, T)) == entry
    assert len({entry_key(e) for e in [*windows[:1], *late, WatermarkChange(T)]}) == 3


def _book_with_usage() -> BillingBook:
    book = BillingBook(timedelta(hours=1))
    rows = [update(Aggregation.UNIQUE_COUNT, D(2), 2, distinct=["u1", "u2"])]
    changes, watermark = window_changes(WINDOWS.encode({"updates": rows, "watermark": T}))
    book.fold_windows(changes)
    book.advance(watermark)
    book.fold_late(
        late_changes(LATE.encode({"items": [late_item(Aggregation.UNIQUE_COUNT, "u3", 1)]}))
    )
    return book


def test_a_book_rebuilt_from_its_journal_alone_holds_the_same_usage() -> None:
    book = _book_with_usage()
    journal = book.take_journal()
    assert book.take_journal() == []
    rebuilt = BillingBook(timedelta(hours=1))
    rebuilt.restore(decode_entry(encode_entry(e, book.watermark)) for e in journal)
    assert rebuilt.watermark == book.watermark
    assert rebuilt.usage == book.usage
    assert rebuilt.journal == []  # restoring does not persist again


def test_replayed_input_after_a_restore_changes_nothing() -> None:
    book = _book_with_usage()
    rebuilt = BillingBook(timedelta(hours=1))
    rebuilt.restore(book.take_journal())
    rows = [update(Aggregation.UNIQUE_COUNT, D(2), 2, distinct=["u1", "u2"])]
    changes, _ = window_changes(WINDOWS.encode({"updates": rows, "watermark": T}))
    assert rebuilt.fold_windows(changes) == set()
    assert rebuilt.take_journal() == []


def test_one_late_event_counts_for_every_meter_it_feeds() -> None:
    """One event feeds several meters: its late items share the digest, not the meter."""
    items = [
        late_item(Aggregation.SUM, "2", 1),
        {**late_item(Aggregation.MAX, "2", 1), "meter": "n"},
    ]
    changes = late_changes(LATE.encode({"items": items}))
    book = BillingBook(timedelta(hours=1))
    book.fold_late(changes)
    assert len(book.usage["acme"].late) == 2
    assert len({entry_key(c) for c in changes}) == 2


# -- sealing: the book stays bounded -----------------------------------------------------


def calls(who: str, at: datetime, n: int, revision: int) -> WindowChange:
    partial = Partial.of_value(Aggregation.SUM, D(n), at)
    return WindowChange(who, "api_calls", ("/a",), at, partial, revision)


def test_settled_periods_are_sealed_and_a_rebuild_holds_what_remains() -> None:
    """Once October is invoiced and older than any event ingest accepts, its usage leaves
    the book (and billing.book, as tombstones); November's stays; a rebuild agrees."""
    catalog = load_catalog(Path(__file__).parents[2] / "deploy" / "catalog.example.yaml")
    who, oct_, nov = (
        "monarch-labs",
        datetime(2026, 10, 22, tzinfo=UTC),
        datetime(2026, 11, 22, tzinfo=UTC),
    )
    book = BillingBook(timedelta(hours=1))
    win = [calls(who, oct_ + timedelta(days=d), 1000, 3) for d in (1, 2)]
    book.fold_windows([*win, calls(who, nov + timedelta(days=1), 7, 2)])
    book.advance(nov + timedelta(days=2))
    [(_, october)] = book.due(catalog, [who])
    invoice = book.invoice(catalog, who, october, issued_at=october.end)
    assert invoice is not None
    book.record_issued(invoice)
    spend_order = book.revision(who)
    written = {}
    for e in book.take_journal():
        written[entry_key(e)] = encode_entry(e, book.watermark)

    assert book.seal(catalog, timedelta(days=40)) == 0  # too recent: an event could still come
    book.advance(nov + timedelta(days=41))
    assert book.seal(catalog, timedelta(days=40)) == 2  # October's two windows
    assert [k[2] for k in book.usage[who].windows] == [nov + timedelta(days=1)]
    assert book.revision(who) == spend_order  # the running-spend order never goes back
    journal = book.take_journal()
    assert [type(e).__name__ for e in journal] == ["WatermarkChange", "Forget", "Forget", "Seal"]
    records = [
        *written.items(),
        *((entry_key(e), encode_entry(e, book.watermark)) for e in journal),
    ]
    rebuilt = BillingBook(timedelta(hours=1))
    for inv in [invoice]:
        rebuilt.record_issued(inv)
    entries, mark = live_entries(records)
    assert mark == Mark()  # no checkpoint mark among these records: replay from the start
    rebuilt.restore(entries)

    def held(b: BillingBook) -> dict[object, tuple[D, int]]:
        return {k: (v.quantity(), r) for k, (v, r) in b.usage[who].windows.items()}  # type: ignore[union-attr]

    assert (
        held(rebuilt) == held(book) == {("api_calls", ("/a",), nov + timedelta(days=1)): (D(7), 2)}
    )
    assert rebuilt.usage[who].sealed == Seal(who, october.end, 6)
    assert rebuilt.revision(who) == spend_order
    # October can no longer change: a replayed old window is refused, no adjustment is made
    assert rebuilt.fold_windows(win) == set()
    assert rebuilt.refused == 2
    assert rebuilt.adjustments(catalog, who, before=datetime(2027, 1, 1, tzinfo=UTC)) == []


def test_the_newest_checkpoint_mark_says_where_the_replay_starts() -> None:
    from streams.wire.book import MARK_KEY, encode_mark

    records = [
        (MARK_KEY, encode_mark(Mark(10, 3), T)),
        (b"watermark", encode_entry(WatermarkChange(T), T)),
        (MARK_KEY, encode_mark(Mark(25, 4), T + HOUR)),
    ]
    entries, mark = live_entries(records)
    assert mark == Mark(25, 4)
    assert entries == [WatermarkChange(T)]  # the mark is not book state


def test_a_checkpoint_interval_must_leave_the_tail_in_retention() -> None:
    from streams.settings import Settings

    ok = Settings(book_checkpoint=timedelta(seconds=5))
    assert not [p for p in ok.problems() if "BOOK_CHECKPOINT" in p]
    slow = Settings(book_checkpoint=timedelta(days=1), stream_retention=timedelta(days=7))
    assert [p for p in slow.problems() if "BOOK_CHECKPOINT" in p]
