"""The window stage's partition state and replay memory (streams/domain/window_replay.py).

An upstream replay (after a crash) re-sends what was not committed: seconds of input,
but in sparse usage possibly days of event time. Forgetting those digests by event time
alone made the replayed copies count twice: once in their window, once as late usage.

Messages here are indexes into a list the test owns; the injected decoder looks them up,
so none of this needs a broker, a catalog or the wire format.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.domain.dedup import event_digest
from streams.domain.metering import Contribution
from streams.domain.meters import Aggregation
from streams.domain.watermarks import SourceWatermarks
from streams.domain.window_replay import (
    REPLAY_HORIZON,
    REPLAY_MEMORY,
    PartitionWindows,
    rebuild_reach,
)
from streams.domain.windows import LateUsage, Output, WindowSize, WindowUpdate

T0 = datetime(2026, 10, 1, tzinfo=UTC)
LATENESS = timedelta(minutes=30)


class Message(NamedTuple):
    pairs: list[tuple[str, Contribution]]
    source: int = 0


Messages = Sequence[Message]


def decode(
    payload: bytes, messages: Messages, progress: SourceWatermarks
) -> list[tuple[str, Contribution]]:
    """The stand-in for the wire decoder: payload ``b"3"`` is ``messages[3]``."""
    message = messages[int(payload)]
    for _, c in message.pairs:
        progress.observe(message.source, c.time)
    return list(message.pairs)


def event(name: str, at: datetime, customer: str = "acme", value: int = 1) -> Message:
    return Message([(customer, usage(name, at, value))])


def usage(name: str, at: datetime, value: int = 1) -> Contribution:
    return Contribution("tokens", (), Decimal(value), at, event_digest("gw", name), Aggregation.SUM)


def partition(sources: int = 1, memory: int = REPLAY_MEMORY) -> PartitionWindows[Messages]:
    return PartitionWindows(WindowSize.HOUR, LATENESS, sources, decode, memory=memory)


def run(
    state: PartitionWindows[Messages], messages: Messages, order: Sequence[int]
) -> list[Output]:
    """Fold each message, then free closed windows, as the stage does after every batch."""
    outputs: list[Output] = []
    for i in order:
        outputs.extend(state.fold(str(i).encode(), messages))
        state.evict()
    return outputs


# -- replays and late usage --------------------------------------------------------------


def test_a_replay_after_its_window_was_freed_is_skipped() -> None:
    messages = [event("a", T0 + timedelta(minutes=5)), event("b", T0 + timedelta(hours=2))]
    state = partition()
    first = run(state, messages, [0, 1])
    assert [type(o) for o in first] == [WindowUpdate, WindowUpdate]
    assert len(state.aggregator) == 1  # 00:00 closed at 01:30 and was freed
    assert run(state, messages, [0]) == []  # upstream re-sent it: neither counted nor late


def test_a_new_event_for_a_freed_window_is_late_usage() -> None:
    messages = [
        event("a", T0 + timedelta(minutes=5)),
        event("b", T0 + timedelta(hours=2)),
        event("c", T0 + timedelta(minutes=10)),
    ]
    outputs = run(partition(), messages, [0, 1, 2])
    (late,) = [o for o in outputs if isinstance(o, LateUsage)]
    assert late.contribution.digest == event_digest("gw", "c")
    assert late.watermark == T0 + timedelta(hours=2)


def test_late_usage_is_settled_so_its_replay_is_not_recorded_twice() -> None:
    messages = [event("b", T0 + timedelta(hours=2)), event("c", T0 + timedelta(minutes=10))]
    state = partition()
    assert [type(o) for o in run(state, messages, [0, 1])] == [WindowUpdate, LateUsage]
    assert event_digest("gw", "c") in state.settled
    assert run(state, messages, [1, 1]) == []


def test_a_message_is_judged_by_the_watermark_before_it() -> None:
    # One message carries an old event and a new one: its own progress must not make
    # the old one late.
    pairs = [("acme", usage("a", T0)), ("acme", usage("b", T0 + timedelta(hours=5)))]
    outputs = run(partition(), [Message(pairs)], [0])
    assert all(isinstance(o, WindowUpdate) for o in outputs) and len(outputs) == 2


# -- the memory's bounds -----------------------------------------------------------------


def settled_days_ago(days: int, per_day: int, memory: int) -> PartitionWindows[Messages]:
    state = partition(memory=memory)
    for d in range(days):
        for i in range(per_day):
            state.settle(f"{d}-{i}".encode(), T0 + timedelta(days=d))
    state.watermark = T0 + timedelta(days=days + 5)  # far past the one-day horizon
    return state


def test_digests_beyond_the_horizon_are_kept_while_the_memory_has_room() -> None:
    state = settled_days_ago(days=10, per_day=100, memory=250_000)
    state.evict()
    assert len(state.settled) == 1000
    assert b"0-0" in state.settled  # ten days of event time back, still recognised


def test_the_oldest_windows_are_forgotten_first_once_the_memory_is_full() -> None:
    state = settled_days_ago(days=10, per_day=100, memory=450)
    state.evict()
    assert len(state.settled) == 500  # whole windows go: never below the memory's size
    assert b"0-0" not in state.settled and b"4-99" not in state.settled
    assert b"5-0" in state.settled and b"9-99" in state.settled


def test_the_horizon_still_protects_recent_windows() -> None:
    state = settled_days_ago(days=3, per_day=10, memory=0)
    state.watermark = T0 + timedelta(days=2, hours=12)  # day 2 is within a day of it
    state.evict()
    assert {d.split(b"-")[0] for d in state.settled} == {b"2"}


@settings(max_examples=200, deadline=None)
@given(
    windows=st.lists(st.tuples(st.integers(0, 96), st.integers(1, 20)), max_size=30),
    memory=st.integers(0, 200),
    watermark_hours=st.integers(0, 120),
)
def test_evict_keeps_the_horizon_and_at_least_the_memory_forgetting_oldest_first(
    windows: list[tuple[int, int]], memory: int, watermark_hours: int
) -> None:
    state = partition(memory=memory)
    start_of: dict[bytes, datetime] = {}
    for n, (hour, size) in enumerate(windows):
        start = T0 + timedelta(hours=hour)
        for i in range(size):
            digest = f"{n}-{i}".encode()
            state.settle(digest, start)
            start_of.setdefault(digest, start)
    state.watermark = T0 + timedelta(hours=watermark_hours)
    before = set(state.settled)
    state.evict()
    forgotten = before - state.settled
    cutoff = state.watermark - REPLAY_HORIZON
    assert all(start_of[d] < cutoff for d in forgotten), "the horizon protects its windows"
    if forgotten:
        assert len(state.settled) >= memory, "never forgets below the memory's size"
        kept_old = [start_of[d] for d in state.settled if start_of[d] < cutoff]
        assert not kept_old or max(start_of[d] for d in forgotten) < min(kept_old)


# -- rebuild -----------------------------------------------------------------------------

EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["acme", "initech"]),
        st.integers(0, 3 * 24 * 60),  # minutes after T0: windows open and close
        st.integers(1, 9),
    ),
    min_size=1,
    max_size=40,
)


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[Message], list[int], int]:
    """Messages (events re-sent, some in later messages), the order they are read in
    (upstream replays re-send earlier messages), and where the worker crashed."""
    pool = draw(EVENTS)
    events = [
        (customer, usage(f"e{i}", T0 + timedelta(minutes=minute), value))
        for i, (customer, minute, value) in enumerate(pool)
    ]
    picks = draw(st.lists(st.integers(0, len(events) - 1), min_size=1, max_size=60))
    sizes = draw(st.lists(st.integers(1, 6), min_size=len(picks), max_size=len(picks)))
    messages: list[Message] = []
    at = 0
    for size in sizes:
        if at >= len(picks):
            break
        messages.append(Message([events[i] for i in picks[at : at + size]]))
        at += size
    order = list(range(len(messages)))
    for _ in range(draw(st.integers(0, 3))):  # an upstream replay re-sends a few messages
        i = draw(st.integers(0, len(messages) - 1))
        order.insert(draw(st.integers(i + 1, len(order))), i)
    crash = draw(st.integers(0, len(order)))
    return messages, order, crash


@settings(max_examples=300, deadline=None)
@given(histories())
def test_a_rebuild_then_the_tail_sends_what_the_crashed_run_sent(
    history: tuple[list[Message], list[int], int],
) -> None:
    messages, order, crash = history
    live = partition()
    sent = [run(live, messages, [i]) for i in order]

    rebuilt = partition()
    rebuilt.rebuild((str(i).encode() for i in order[:crash]), messages)
    assert rebuilt.watermark == _watermark_after(messages, order[:crash])
    assert [run(rebuilt, messages, [i]) for i in order[crash:]] == sent[crash:]
    assert rebuilt.aggregator.snapshot() == live.aggregator.snapshot()
    assert rebuilt.settled == live.settled


def _watermark_after(messages: Messages, order: Sequence[int]) -> datetime:
    progress = SourceWatermarks(1)
    for i in order:
        decode(str(i).encode(), messages, progress)
    return progress.watermark


def test_rebuilding_twice_from_the_same_input_changes_nothing() -> None:
    messages = [event("a", T0), event("b", T0 + timedelta(hours=3)), event("c", T0)]
    once, twice = partition(), partition()
    once.rebuild((b"0", b"1", b"2"), messages)
    twice.rebuild((b"0", b"1", b"2", b"0", b"1", b"2"), messages)
    assert once.aggregator.snapshot() == twice.aggregator.snapshot()
    assert once.settled == twice.settled == {event_digest("gw", n) for n in "ac"}


def test_the_watermark_waits_for_every_upstream_partition() -> None:
    early = Message([("acme", usage("a", T0))], source=0)
    ahead = Message([("acme", usage("b", T0 + timedelta(days=2)))], source=1)
    state = partition(sources=2)
    run(state, [early, ahead], [1])
    assert state.watermark < T0  # source 0 has not reported: nothing is late yet
    assert [type(o) for o in run(state, [early, ahead], [0])] == [WindowUpdate]


def test_the_rebuild_reaches_back_over_open_windows_and_the_replay_horizon() -> None:
    assert rebuild_reach(WindowSize.HOUR, LATENESS) == timedelta(days=1, hours=1, minutes=30)
    assert rebuild_reach(WindowSize.DAY, timedelta(0)) == 2 * REPLAY_HORIZON
