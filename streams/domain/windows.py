"""Event-time tumbling windows over meter contributions: the core of the window stage.

The agent around :class:`WindowAggregator` decodes a batch, calls ``add_many`` with
its watermark, sends the outputs, then commits. Everything here is a pure function
of the contributions and watermarks it is given (no clock, no I/O), so rebuilding
state by replaying the input topic reproduces the same outputs.

Semantics, decided once for every consumer:

* A window is ``[start, start + size)``, aligned to UTC; an event stamped exactly at
  a window's end belongs to the next one.
* A window is *closed* once ``watermark >= end + allowed_lateness``. A contribution
  for a closed window is never folded in: it comes back as :class:`LateUsage`, which
  the caller records and bills as an adjustment in the next open billing period.
* A :class:`WindowUpdate` carries the window's absolute total, never a delta, and
  its ``revision`` (distinct events counted) only grows: re-sending one is harmless,
  and ClickHouse keeps the highest revision (ReplacingMergeTree version).
* Each event counts once per window: contributions are de-duplicated by digest.
* The watermark is the caller's choice; the window stage passes the event-time
  progress of the slowest upstream usage partition (:mod:`streams.domain.watermarks`).
  It must follow from the input alone (no wall clock) for a rebuild to reproduce the
  same late/on-time decisions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import NamedTuple

from streams.domain.accumulators import ACCUMULATORS, Accumulator
from streams.domain.metering import Contribution
from streams.domain.meters import Aggregation
from streams.domain.recompute import recompute


class WindowSize(StrEnum):
    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"

    @property
    def duration(self) -> timedelta:
        return _DURATIONS[self]


_DURATIONS = {
    WindowSize.MINUTE: timedelta(minutes=1),
    WindowSize.HOUR: timedelta(hours=1),
    WindowSize.DAY: timedelta(days=1),
}


def _utc(t: datetime) -> datetime:
    if t.tzinfo is UTC:
        return t
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"naive datetime {t.isoformat()}: event times must carry a zone")
    return t.astimezone(UTC)


def _minute(t: datetime) -> datetime:
    return _utc(t).replace(second=0, microsecond=0)


def _hour(t: datetime) -> datetime:
    return _utc(t).replace(minute=0, second=0, microsecond=0)


def _day(t: datetime) -> datetime:
    return _utc(t).replace(hour=0, minute=0, second=0, microsecond=0)


_FLOORS: dict[WindowSize, Callable[[datetime], datetime]] = {
    WindowSize.MINUTE: _minute,
    WindowSize.HOUR: _hour,
    WindowSize.DAY: _day,
}


def window_start(t: datetime, size: WindowSize) -> datetime:
    """Start (in UTC) of the tumbling window holding ``t``; ValueError if ``t`` is naive."""
    return _FLOORS[size](t)


class WindowKey(NamedTuple):
    """One billable series point: a customer's meter, per group, per window."""

    customer: str
    meter: str
    group: tuple[str, ...]
    start: datetime


class WindowUpdate(NamedTuple):
    """The window's absolute value after ``revision`` distinct events.

    ``events`` is how many of them this update adds to the previous one, and
    ``is_correction`` says an earlier update for the window was already emitted.
    """

    key: WindowKey
    value: Decimal
    revision: int
    events: int
    is_correction: bool


class LateReason(StrEnum):
    WINDOW_CLOSED = "window_closed"
    """The watermark had passed the window's end plus the allowed lateness."""


class LateUsage(NamedTuple):
    """A contribution that missed its window; bill it as an adjustment, never drop it.

    ``key`` names the window it would have gone to; ``watermark`` is the one that
    judged it late. Record it idempotently by ``contribution.digest``: once its window
    was evicted a replayed late event comes back again.
    """

    key: WindowKey
    contribution: Contribution
    watermark: datetime
    reason: LateReason = LateReason.WINDOW_CLOSED


Output = WindowUpdate | LateUsage


class WindowState:
    """One retained window: its accumulator and the digests of the events in it."""

    __slots__ = ("key", "aggregation", "accumulator", "digests", "emitted")

    def __init__(self, key: WindowKey, aggregation: Aggregation) -> None:
        self.key = key
        self.aggregation = aggregation
        self.accumulator: Accumulator = ACCUMULATORS[aggregation]()
        self.digests: set[bytes] = set()
        self.emitted = False

    @property
    def revision(self) -> int:
        """Distinct events counted: grows by one per new event, so it orders versions."""
        return len(self.digests)

    def value(self) -> Decimal:
        return self.accumulator.result()


_Key = tuple[str, str, tuple[str, ...], datetime]  # a WindowKey compares and hashes like this


class WindowAggregator:
    """Tumbling windows for one partition's contributions, driven by the caller's watermark.

    The effective watermark is the greatest one passed so far, so a caller whose
    watermark briefly steps back cannot reopen a window.
    """

    __slots__ = ("size", "allowed_lateness", "_floor", "_reach", "_states", "_by_start", "_mark")

    def __init__(self, size: WindowSize, allowed_lateness: timedelta = timedelta(0)) -> None:
        if allowed_lateness < timedelta(0):
            raise ValueError("allowed_lateness must not be negative")
        self.size = size
        self.allowed_lateness = allowed_lateness
        self._floor = _FLOORS[size]
        self._reach = size.duration + allowed_lateness  # start + reach = when a window closes
        self._states: dict[_Key, WindowState] = {}
        self._by_start: dict[datetime, list[_Key]] = {}
        self._mark: datetime | None = None

    @property
    def watermark(self) -> datetime | None:
        return self._mark

    def __len__(self) -> int:
        """Windows whose state is retained (open, or closed and not yet evicted)."""
        return len(self._states)

    def state(self, key: WindowKey) -> WindowState | None:
        return self._states.get(key)

    def closes_at(self, start: datetime) -> datetime:
        """The watermark at which the window starting at ``start`` closes."""
        return start + self._reach

    def _advance(self, watermark: datetime) -> datetime:
        """The effective watermark: the greatest one passed so far."""
        _utc(watermark)  # rejects a naive watermark
        if self._mark is None or watermark > self._mark:
            self._mark = watermark
        return self._mark

    def add(self, customer: str, contribution: Contribution, watermark: datetime) -> list[Output]:
        return self.add_many(((customer, contribution),), watermark)

    def add_many(
        self, batch: Iterable[tuple[str, Contribution]], watermark: datetime
    ) -> list[Output]:
        """Fold a batch in; at most one update per window changed, then the late usage.

        A contribution already counted in a retained window (a replay or duplicate) is
        skipped, even when that window has closed since. ValueError when a meter's
        aggregation changed while its window was open: contributions before it in the
        batch stay counted and appear in the window's next update.
        """
        mark = self._advance(watermark)
        horizon = mark - self._reach  # a window starting at or before this is closed
        states = self._states
        floor = self._floor
        span = self.size.duration
        lo = hi = mark  # the last window span seen: consecutive events mostly share it
        before: dict[WindowState, int] = {}  # windows changed in this batch -> old revision
        late: list[Output] = []
        for customer, contribution in batch:
            meter, group, value, time, digest, aggregation = contribution
            if lo <= time < hi:
                start = lo
            else:
                start = lo = floor(time)
                hi = start + span
            key = (customer, meter, group, start)
            state = states.get(key)
            if state is None:
                if start <= horizon:
                    late.append(LateUsage(WindowKey(*key), contribution, mark))
                    continue
                state = self._open(WindowKey(*key), aggregation)
            elif digest in state.digests:
                continue
            elif start <= horizon:
                late.append(LateUsage(state.key, contribution, mark))
                continue
            if state.aggregation is not aggregation:
                raise ValueError(
                    f"meter {meter!r} changed aggregation from {state.aggregation} to "
                    f"{aggregation} while window {start.isoformat()} was open"
                )
            digests = state.digests
            if state not in before:
                before[state] = len(digests)
            digests.add(digest)
            state.accumulator.add(value, time, digest)
        updates: list[Output] = []
        for state, old in before.items():
            revision = len(state.digests)
            updates.append(
                WindowUpdate(state.key, state.value(), revision, revision - old, state.emitted)
            )
            state.emitted = True
        return updates + late if late else updates

    def _open(self, key: WindowKey, aggregation: Aggregation) -> WindowState:
        state = WindowState(key, aggregation)
        self._states[key] = state
        starts = self._by_start.get(key.start)
        if starts is None:
            self._by_start[key.start] = [key]
        else:
            starts.append(key)
        return state

    def evict_closed(self, watermark: datetime) -> list[WindowKey]:
        """Free the state of every closed window; later events for them are late usage.

        Until a closed window is evicted, a replay of an event already in it is still
        recognised and skipped; after, it would come back as :class:`LateUsage`.
        """
        return [state.key for state in self.evict_closed_states(watermark)]

    def evict_closed_states(self, watermark: datetime) -> list[WindowState]:
        """:meth:`evict_closed`, returning the freed states (their digests say what was counted)."""
        horizon = self._advance(watermark) - self._reach
        evicted: list[WindowState] = []
        for start in sorted(s for s in self._by_start if s <= horizon):
            for key in self._by_start.pop(start):
                evicted.append(self._states.pop(key))
        return evicted

    def rebuild(self, batch: Iterable[tuple[str, Contribution]], watermark: datetime) -> int:
        """Restore state after a restart by replaying the already committed input.

        Pass every contribution from the earliest one of any window still open at
        ``watermark`` up to the last committed offset, and the watermark as it stood
        at that offset. Windows still open then get exactly the events they had before
        the crash: the watermark only grows, so none of those events was late. Windows
        closed by then stay closed. The rebuilt windows count as already emitted (their
        updates went out before the offsets were committed), so the replay's updates and
        late usage are discarded, not returned: replaying the uncommitted tail with
        ``add_many`` then yields the same outputs as before the crash, and replaying any
        prefix twice changes nothing.

        Returns how many windows are retained afterwards (open, or closed and not yet
        evicted).
        """
        self.add_many(batch, watermark)
        return len(self._states)

    def snapshot(self) -> dict[WindowKey, Decimal]:
        """Every retained window's current value."""
        return {state.key: state.value() for state in self._states.values()}


def batch_aggregate(
    customer_contributions: Iterable[tuple[str, Contribution]], size: WindowSize
) -> dict[WindowKey, Decimal]:
    """The oracle: every window recomputed from scratch, ignoring lateness.

    De-duplicates by digest within a window, like the streaming path, but computes
    each aggregate directly from the list of events rather than incrementally.
    """
    windows: dict[WindowKey, dict[bytes, Contribution]] = {}
    for customer, c in customer_contributions:
        key = WindowKey(customer, c.meter, c.group, window_start(c.time, size))
        windows.setdefault(key, {}).setdefault(c.digest, c)
    return {key: recompute(list(events.values())) for key, events in windows.items()}
