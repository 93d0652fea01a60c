"""One window partition's state and its replay memory: what the window stage folds into.

The window stage reads one partition of ``usage.attributed``. For each partition it
keeps a :class:`PartitionWindows`: the open windows (a
:class:`~streams.domain.windows.WindowAggregator`), the progress of every upstream
usage partition (the watermark), and the *replay memory*: the digests of events whose
window has closed and been freed.

Why the memory: after a crash upstream re-sends what it had not committed. An event
whose window is still retained is recognised there; one whose window was freed would
come back as late usage and be billed twice. So the events of freed windows (and the
late usage already recorded) are *settled*, and a settled event is skipped. The memory
is bounded: a closed window's events are kept for :data:`REPLAY_HORIZON` of event time,
and in any case the newest :data:`REPLAY_MEMORY` of them.

Everything here is a pure function of the messages folded in, in order. Decoding a
message (which, for old messages, needs the catalog in force) is the caller's callable,
so :meth:`PartitionWindows.rebuild` over the committed input followed by
:meth:`PartitionWindows.fold` of the uncommitted tail gives the same outputs as the run
that crashed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Generic, NamedTuple, TypeVar

from streams.domain.metering import Contribution
from streams.domain.watermarks import EPOCH, SourceWatermarks
from streams.domain.windows import LateUsage, Output, WindowAggregator, WindowSize, window_start

REPLAY_HORIZON = timedelta(days=1)
"""How long (in event time) the digests of closed windows are remembered at least: an
upstream replay re-sends events seconds after the originals, which must not be billed
again as late usage although their window already counted them."""
REPLAY_MEMORY = 250_000
"""...and how many are remembered at least, whatever their event time. A replay re-sends
what upstream had not committed (a few seconds of input), which in sparse usage can span
days of event time: a month of hourly usage can pass a day of event time per message."""

Pairs = list[tuple[str, Contribution]]
Context = TypeVar("Context")
Decode = Callable[[bytes, Context, SourceWatermarks], Pairs]
"""One message's (customer, contribution) pairs, given what the caller decodes it with
(the window stage: the catalog in force). It records in the :class:`SourceWatermarks`
how far each upstream partition has got, as the message says."""


def rebuild_reach(size: WindowSize, allowed_lateness: timedelta) -> timedelta:
    """How much event time before the watermark a rebuild must read to restore the state.

    A window still open started at most ``size + allowed_lateness`` before the watermark,
    and the replay memory covers :data:`REPLAY_HORIZON` before that. The input topic's
    retention must exceed this (plus how far wall-clock arrival can trail event time).
    """
    return size.duration + allowed_lateness + REPLAY_HORIZON


class Rebuilt(NamedTuple):
    windows: int
    """Windows retained (still open, or closed and not yet freed)."""
    contributions: int
    """Contributions read."""


class PartitionWindows(Generic[Context]):
    """One input partition's windows, the progress of its upstream partitions, and the
    digests of settled events (see the module docstring)."""

    def __init__(
        self,
        size: WindowSize,
        lateness: timedelta,
        sources: int,
        decode: Decode[Context],
        *,
        horizon: timedelta = REPLAY_HORIZON,
        memory: int = REPLAY_MEMORY,
    ) -> None:
        self.aggregator = WindowAggregator(size, lateness)
        self.progress = SourceWatermarks(sources)
        self.decode = decode
        self.horizon = horizon
        self.memory = memory
        self.watermark = EPOCH
        """Never goes back, even when a new upstream partition shows up behind the others."""
        self.settled: set[bytes] = set()
        """Events of evicted windows (counted, or recorded late): a replay of one is skipped."""
        self._settled_by_start: dict[datetime, list[bytes]] = {}

    def settle(self, digest: bytes, window_start: datetime) -> None:
        if digest not in self.settled:
            self.settled.add(digest)
            self._settled_by_start.setdefault(window_start, []).append(digest)

    def evict(self) -> None:
        """Free closed windows, remembering their events; forget the oldest windows' events
        once they are beyond both the replay horizon and the replay memory.

        Whole windows are forgotten, oldest first, and only while what stays still holds
        at least ``memory`` digests.
        """
        for state in self.aggregator.evict_closed_states(self.watermark):
            for digest in state.digests:
                self.settle(digest, state.key.start)
        cutoff = self.watermark - self.horizon
        for start in sorted(s for s in self._settled_by_start if s < cutoff):
            if len(self.settled) - len(self._settled_by_start[start]) < self.memory:
                break
            self.settled.difference_update(self._settled_by_start.pop(start))

    def contributions(self, payload: bytes, context: Context) -> tuple[Pairs, datetime]:
        """The message's contributions, and the watermark to judge them by: the progress
        as of the previous message (a message's own progress must not make it late)."""
        judged_by = self.watermark
        pairs = self.decode(payload, context, self.progress)
        self.watermark = max(self.watermark, self.progress.watermark)
        return pairs, judged_by

    def fold(self, payload: bytes, context: Context) -> list[Output]:
        """Fold one message in: window updates, then late usage. Settled events are skipped;
        late usage is settled, so a replay of it is not recorded twice."""
        pairs, judged_by = self.contributions(payload, context)
        if self.settled:
            pairs = [p for p in pairs if p[1].digest not in self.settled]
        outputs = self.aggregator.add_many(pairs, judged_by)
        for out in outputs:
            if isinstance(out, LateUsage):
                self.settle(out.contribution.digest, out.key.start)
        return outputs

    def rebuild(self, payloads: Iterable[bytes], context: Context) -> Rebuilt:
        """Restore the state from the input already committed (in order), on a fresh state.

        Windows still open at the final watermark get their events back, counted as
        already emitted; every event of a window closed by then is settled, whether it
        was counted or recorded late before the crash. Nothing is returned to send:
        folding the uncommitted tail afterwards yields what the crashed run sent for it.
        """
        pairs: Pairs = []
        for payload in payloads:
            pairs.extend(self.contributions(payload, context)[0])
        held = self.aggregator.rebuild(pairs, self.watermark) if pairs else 0
        size = self.aggregator.size
        for _, c in pairs:
            start = window_start(c.time, size)
            if self.aggregator.closes_at(start) <= self.watermark:
                self.settle(c.digest, start)
        self.evict()
        return Rebuilt(held, len(pairs))
