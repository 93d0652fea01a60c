"""The window stage remembers the events of closed windows long enough to spot replays.

An upstream replay (after a crash) re-sends what was not committed: seconds of input,
but in sparse usage possibly days of event time. Forgetting those digests by event time
alone made the replayed copies count twice: once in their window, once as late usage.
"""

from datetime import UTC, datetime, timedelta

import pytest

from streams.agents import window as stage
from streams.agents.window import PartitionWindows
from streams.domain.windows import WindowSize

T0 = datetime(2026, 10, 1, tzinfo=UTC)


def settled_days_ago(days: int, per_day: int) -> PartitionWindows:
    state = PartitionWindows(WindowSize.HOUR, timedelta(minutes=30), sources=1)
    for d in range(days):
        for i in range(per_day):
            state.settle(f"{d}-{i}".encode(), T0 + timedelta(days=d))
    state.watermark = T0 + timedelta(days=days + 5)  # far past the one-day horizon
    return state


def test_digests_beyond_the_horizon_are_kept_while_the_memory_has_room() -> None:
    state = settled_days_ago(days=10, per_day=100)
    state.evict()
    assert len(state.settled) == 1000
    assert b"0-0" in state.settled  # ten days of event time back, still recognised


def test_the_oldest_windows_are_forgotten_first_once_the_memory_is_full(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(stage, "REPLAY_MEMORY", 450)
    state = settled_days_ago(days=10, per_day=100)
    state.evict()
    assert len(state.settled) == 500  # whole windows go: never below the memory's size
    assert b"0-0" not in state.settled and b"4-99" not in state.settled
    assert b"5-0" in state.settled and b"9-99" in state.settled


def test_the_horizon_still_protects_recent_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stage, "REPLAY_MEMORY", 0)
    state = settled_days_ago(days=3, per_day=10)
    state.watermark = T0 + timedelta(days=2, hours=12)  # day 2 is within a day of it
    state.evict()
    assert {d.split(b"-")[0] for d in state.settled} == {b"2"}
