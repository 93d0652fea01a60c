"""Position-aware de-duplication memory (streams/domain/dedup.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.domain.dedup import (
    MAX_BATCH_INDEX,
    SeenEvents,
    Verdict,
    event_digest,
    pack_entries,
    position,
    unpack_entries,
)

A = event_digest("gw", "a")
B = event_digest("gw", "b")
C = event_digest("gw", "c")


# -- digests and positions -------------------------------------------------------------


def test_digest_is_16_bytes_and_depends_on_source_and_id() -> None:
    assert len(A) == 16
    assert event_digest("gw", "a") == A
    assert (
        len({A, event_digest("other", "a"), event_digest("gw", "A"), event_digest("", "gwa")}) == 4
    )


def test_distinct_keys_have_distinct_digests_even_with_separator_characters() -> None:
    assert event_digest("a\x1fb", "c") != event_digest("a", "b\x1fc")


def test_position_packs_offset_and_index() -> None:
    assert position(0, 0) == 0
    assert position(1, 0) == MAX_BATCH_INDEX
    assert position(3, 5) == 3 * 65536 + 5
    assert position(7, MAX_BATCH_INDEX - 1) < position(8, 0)


@pytest.mark.parametrize("index", [-1, MAX_BATCH_INDEX, MAX_BATCH_INDEX + 1])
def test_position_rejects_an_index_outside_a_batch(index: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        position(0, index)


@given(
    a=st.tuples(st.integers(0, 2**46), st.integers(0, MAX_BATCH_INDEX - 1)),
    b=st.tuples(st.integers(0, 2**46), st.integers(0, MAX_BATCH_INDEX - 1)),
)
def test_positions_order_like_offset_then_index(a: tuple[int, int], b: tuple[int, int]) -> None:
    assert (position(*a) < position(*b)) == (a < b)
    assert (position(*a) == position(*b)) == (a == b)


# -- classify and admit -----------------------------------------------------------------


def test_classify_new_replay_duplicate() -> None:
    seen = SeenEvents()

    assert seen.classify(A, 10) is Verdict.NEW
    assert seen.admit(A, 10)
    assert seen.classify(A, 10) is Verdict.REPLAY
    assert seen.classify(A, 11) is Verdict.DUPLICATE
    assert seen.classify(A, 9) is Verdict.DUPLICATE
    assert seen.classify(B, 10) is Verdict.NEW


def test_classify_does_not_remember() -> None:
    seen = SeenEvents()
    seen.classify(A, 1)

    assert len(seen) == 0
    assert seen.admit(A, 2)


def test_admit_emits_new_and_replay_but_not_duplicate() -> None:
    seen = SeenEvents()

    assert seen.admit(A, 10) is True
    assert seen.admit(A, 10) is True
    assert seen.admit(A, 11) is False
    assert seen.admit(A, 3) is False
    assert len(seen) == 1


def test_first_position_wins() -> None:
    seen = SeenEvents()
    seen.admit(A, 10)
    seen.admit(A, 20)

    assert seen.classify(A, 10) is Verdict.REPLAY
    assert seen.classify(A, 20) is Verdict.DUPLICATE


def test_remember_keeps_the_first_position() -> None:
    seen = SeenEvents()
    seen.remember([(A, 5), (B, 6)], arrived_at=1.0)
    seen.remember([(A, 9), (C, 9)], arrived_at=2.0)

    assert len(seen) == 3
    assert seen.classify(A, 5) is Verdict.REPLAY
    assert seen.classify(A, 9) is Verdict.DUPLICATE
    assert seen.classify(C, 9) is Verdict.REPLAY


def test_verdicts_are_their_names() -> None:
    assert [str(v) for v in Verdict] == ["new", "replay", "duplicate"]


# -- the log record -------------------------------------------------------------------------

digests = st.binary(min_size=16, max_size=16)
positions = st.integers(0, 2**63 - 1)


@given(entries=st.lists(st.tuples(digests, positions)))
def test_pack_unpack_round_trip(entries: list[tuple[bytes, int]]) -> None:
    body = pack_entries(entries)

    assert len(body) == 24 * len(entries)
    assert unpack_entries(body) == entries


@pytest.mark.parametrize("cut", [1, 8, 23])
def test_truncated_log_record_is_an_error(cut: int) -> None:
    body = pack_entries([(A, 1), (B, 2)])

    with pytest.raises(ValueError, match="truncated"):
        unpack_entries(body[:-cut])


def test_empty_log_record_has_no_entries() -> None:
    assert pack_entries([]) == b""
    assert unpack_entries(b"") == []


# -- retention -------------------------------------------------------------------------------


def test_forget_evicts_exactly_the_batches_that_arrived_before_the_cutoff() -> None:
    seen = SeenEvents()
    first = [(event_digest("gw", f"1-{i}"), position(1, i)) for i in range(3)]
    second = [(event_digest("gw", f"2-{i}"), position(2, i)) for i in range(2)]
    third = [(event_digest("gw", f"3-{i}"), position(3, i)) for i in range(4)]
    seen.remember(first, arrived_at=100.0)
    seen.remember(second, arrived_at=200.0)
    seen.remember(third, arrived_at=300.0)

    assert seen.forget_arrived_before(200.0) == 3  # strictly before: the second batch stays
    assert len(seen) == 6
    assert all(seen.classify(d, p) is Verdict.NEW for d, p in first)
    assert all(seen.classify(d, p) is Verdict.REPLAY for d, p in second + third)

    assert seen.forget_arrived_before(300.5) == 6
    assert len(seen) == 0


def test_forget_with_nothing_old_enough_is_a_no_op() -> None:
    seen = SeenEvents()
    seen.remember([(A, 1)], arrived_at=50.0)

    assert seen.forget_arrived_before(50.0) == 0
    assert seen.forget_arrived_before(10.0) == 0
    assert len(seen) == 1
    assert SeenEvents().forget_arrived_before(1e12) == 0


def test_forget_follows_mark_arrival_for_admitted_events() -> None:
    seen = SeenEvents()
    for digest, pos, t in ((A, position(1, 0), 10.0), (B, position(2, 0), 20.0)):
        seen.admit(digest, pos)
        seen.mark_arrival(pos, t)
    seen.admit(C, position(3, 0))  # accepted, its batch not yet marked

    assert seen.forget_arrived_before(15.0) == 1
    assert seen.classify(A, position(1, 0)) is Verdict.NEW
    assert seen.classify(B, position(2, 0)) is Verdict.REPLAY
    assert seen.classify(C, position(3, 0)) is Verdict.REPLAY


def test_an_evicted_event_is_new_again() -> None:
    seen = SeenEvents()
    seen.remember([(A, 1)], arrived_at=1.0)
    seen.forget_arrived_before(2.0)

    assert seen.admit(A, 99)
    assert seen.classify(A, 99) is Verdict.REPLAY


def test_remembering_nothing_marks_no_arrival() -> None:
    seen = SeenEvents()
    seen.remember([], arrived_at=1.0)
    seen.remember([(A, 7)], arrived_at=5.0)

    assert seen.forget_arrived_before(2.0) == 0
    assert len(seen) == 1


# -- crash and replay, end to end ---------------------------------------------------------


def rebuild(log: list[tuple[float, bytes]]) -> SeenEvents:
    """What connectors/kafka/dedup_log.load_seen does with the log topic's records."""
    seen = SeenEvents()
    for arrived_at, body in log:
        seen.remember(unpack_entries(body), arrived_at)
    return seen


@settings(max_examples=150, deadline=None)
@given(
    messages=st.lists(st.lists(st.integers(0, 12), max_size=4), max_size=14),
    batch_size=st.integers(1, 4),
    crashes=st.lists(st.sampled_from(["none", "before-log", "before-commit"]), max_size=12),
)
def test_crash_and_replay_emit_every_event_once_at_its_first_position(
    messages: list[list[int]], batch_size: int, crashes: list[str]
) -> None:
    """Runs the ingest loop over a partition whose messages carry event keys.

    Per batch: admit every event, then write the log record, then commit the offset.
    A crash before either step restarts from the committed offset with a SeenEvents
    rebuilt from the log written so far, as a restarted worker does. What a crashed
    attempt emitted may or may not have reached the output topic, so every key must
    be emitted by some attempt that committed.
    """
    log: list[tuple[float, bytes]] = []
    attempted: set[tuple[int, int]] = set()
    delivered: set[tuple[int, int]] = set()
    seen = SeenEvents()
    committed = 0
    clock = 0.0
    pending_crashes = iter(crashes)
    while committed < len(messages):
        clock += 1.0
        end = min(committed + batch_size, len(messages))
        emitted: list[tuple[int, int]] = []
        entries: list[tuple[bytes, int]] = []
        for offset in range(committed, end):
            for index, key in enumerate(messages[offset]):
                digest, pos = event_digest("gw", str(key)), position(offset, index)
                if seen.admit(digest, pos):
                    emitted.append((key, pos))
                    entries.append((digest, pos))
        attempted.update(emitted)
        crash = next(pending_crashes, "none")
        if crash == "before-log":
            seen = rebuild(log)
            continue
        if entries:
            log.append((clock, pack_entries(entries)))
            seen.mark_arrival(max(p for _, p in entries), clock)
        if crash == "before-commit":
            seen = rebuild(log)
            continue
        delivered.update(emitted)
        committed = end

    first_position: dict[int, int] = {}
    for offset, keys in enumerate(messages):
        for index, key in enumerate(keys):
            first_position.setdefault(key, position(offset, index))
    assert delivered == set(first_position.items())
    assert attempted == delivered  # a crashed attempt never emits anything else


@settings(max_examples=100, deadline=None)
@given(deliveries=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 20)), max_size=40))
def test_any_delivery_order_never_emits_a_key_at_two_positions(
    deliveries: list[tuple[int, int]],
) -> None:
    """Arbitrary (key, offset) deliveries, redeliveries included, against one memory."""
    seen = SeenEvents()
    emitted: dict[int, set[int]] = {}
    for key, offset in deliveries:
        if seen.admit(event_digest("gw", str(key)), position(offset, 0)):
            emitted.setdefault(key, set()).add(offset)

    assert set(emitted) == {key for key, _ in deliveries}
    assert all(len(offsets) == 1 for offsets in emitted.values())
    first = {}
    for key, offset in deliveries:
        first.setdefault(key, offset)
    assert {k: min(v) for k, v in emitted.items()} == first


def test_ingest_remembers_ids_for_the_event_age_plus_the_clock_skew() -> None:
    """An event stamped an hour ahead is valid for max age after its own time: a re-send
    arriving then must still be recognised, so the memory spans age + skew."""
    from datetime import timedelta

    from streams.settings import Settings

    s = Settings(max_event_age=timedelta(days=40), max_clock_skew=timedelta(hours=1))
    assert s.dedup_memory == timedelta(days=40, hours=1)
