"""Event-time watermarks over several upstream partitions.

A window stage reads one partition that interleaves events from every upstream
usage partition; each upstream partition is in event-time order, but together
they are not (in a backfill, one can be hours of event time ahead of another).
So the watermark is the progress of the *slowest* upstream partition, and it stays
at the epoch until every upstream partition has reported: a partition that is
merely behind never turns its events late. Computed from event times only, so
replaying the same input gives the same watermark.

Trade-off: a usage partition that receives no traffic at all holds the watermark
back. Window totals are still emitted as events arrive (the watermark only decides
lateness and when a window's state is freed), so the cost is memory, not freshness.
"""

from __future__ import annotations

from datetime import UTC, datetime

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class SourceWatermarks:
    """Progress of ``sources`` upstream partitions (numbered 0..sources-1)."""

    __slots__ = ("sources", "_latest")

    def __init__(self, sources: int) -> None:
        self.sources = sources
        self._latest: dict[int, datetime] = {}

    def observe(self, source: int, time: datetime) -> None:
        latest = self._latest.get(source)
        if latest is None or time > latest:
            self._latest[source] = time

    @property
    def watermark(self) -> datetime:
        """Epoch until every source 0..sources-1 has reported; then the slowest one.

        A source outside that range (a topic with more partitions than configured) is
        counted too once it reports, so it can only hold the watermark back, never
        stand in for a partition that has not reported.
        """
        latest = self._latest
        if not latest or any(s not in latest for s in range(self.sources)):
            return EPOCH
        return min(latest.values())
