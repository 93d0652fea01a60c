"""Invoices a connector has read but not yet settled, and how far it may commit.

Every invoice read waits here for its attempt: fresh ones in the order read
(:meth:`InFlight.queue`), those waiting out a backoff in the retry schedule
(:meth:`InFlight.retry_at`), due retries first. So one slow invoice never holds up
the others, and the runner can poll its consumer between any two attempts. The consumer's offsets, though,
may only move past an invoice once its outcome is recorded: :meth:`InFlight.commit_points`
gives, per partition, the lowest offset still unsettled (or one past the last
read when all are settled). A crash therefore redelivers every unsettled invoice
and possibly some settled ones after it; the rails' idempotency makes that harmless.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from dataclasses import dataclass, field

from streams.domain.invoice import Invoice

TopicPartitionKey = tuple[str, int]


@dataclass(eq=False)
class Pending:
    """One consumed invoice record on its way to an outcome."""

    topic: str
    partition: int
    offset: int
    value: bytes
    invoice: Invoice | None = None
    attempts: int = 0
    first_attempt_at: float | None = None
    """Monotonic time of the first attempt: the retry time limit counts from here."""
    last_error: tuple[str | None, str] | None = None
    resolved: bool = False
    """An outcome (delivered, or failed and dead-lettered) has been produced."""
    unacked: int = 0
    """Records about this invoice the broker has not acknowledged yet."""

    @property
    def key(self) -> TopicPartitionKey:
        return (self.topic, self.partition)

    @property
    def settled(self) -> bool:
        """Resolved, and every record about it acknowledged: its offset may be committed."""
        return self.resolved and self.unacked == 0


@dataclass
class InFlight:
    """Unsettled invoices by partition and offset, with the retry schedule."""

    _unsettled: dict[TopicPartitionKey, dict[int, Pending]] = field(default_factory=dict)
    _read_up_to: dict[TopicPartitionKey, int] = field(default_factory=dict)
    _schedule: list[tuple[float, int, Pending]] = field(default_factory=list)
    _seq: itertools.count[int] = field(default_factory=itertools.count)
    _ready: deque[Pending] = field(default_factory=deque)

    def __len__(self) -> int:
        return sum(len(offsets) for offsets in self._unsettled.values())

    def add(self, entry: Pending) -> None:
        self._unsettled.setdefault(entry.key, {})[entry.offset] = entry
        self._read_up_to[entry.key] = max(self._read_up_to.get(entry.key, 0), entry.offset + 1)

    def queue(self, entry: Pending) -> None:
        """``entry`` (already :meth:`add`-ed) waits for its first attempt, after those read before it."""
        self._ready.append(entry)

    def _live(self, entry: Pending) -> bool:
        return self._unsettled.get(entry.key, {}).get(entry.offset) is entry

    def has_work(self, now: float) -> bool:
        """Whether an attempt is due at ``now``: a retry come due, or a fresh invoice."""
        while self._schedule and not self._live(self._schedule[0][2]):
            heapq.heappop(self._schedule)
        while self._ready and not self._live(self._ready[0]):
            self._ready.popleft()
        return bool(self._ready) or bool(self._schedule and self._schedule[0][0] <= now)

    def take(self, now: float) -> Pending | None:
        """The next invoice to attempt at ``now``: the earliest due retry, else the oldest fresh one."""
        due = self.pop_due(now)
        if due is not None:
            return due
        while self._ready:
            entry = self._ready.popleft()
            if self._live(entry):
                return entry
        return None

    @property
    def ready(self) -> int:
        """Invoices read and not attempted yet."""
        return len(self._ready)

    def retry_at(self, entry: Pending, due: float) -> None:
        heapq.heappush(self._schedule, (due, next(self._seq), entry))

    def next_due(self) -> float | None:
        return self._schedule[0][0] if self._schedule else None

    def pop_due(self, now: float) -> Pending | None:
        """The earliest retry due by ``now`` (None if none is due yet)."""
        while self._schedule and self._schedule[0][0] <= now:
            _, _, entry = heapq.heappop(self._schedule)
            if self._live(entry):
                return entry
        return None

    @property
    def waiting(self) -> int:
        """Invoices waiting out a backoff."""
        return len(self._schedule)

    def settle_ready(self) -> list[Pending]:
        """Forget every settled invoice; returns them."""
        done: list[Pending] = []
        for offsets in self._unsettled.values():
            for offset, entry in list(offsets.items()):
                if entry.settled:
                    del offsets[offset]
                    done.append(entry)
        return done

    def commit_points(self) -> dict[TopicPartitionKey, int]:
        """Per partition read, the offset to commit: nothing at or after it is known settled."""
        points: dict[TopicPartitionKey, int] = {}
        for key, read_up_to in self._read_up_to.items():
            offsets = self._unsettled.get(key)
            points[key] = min(offsets) if offsets else read_up_to
        return points

    def forget(self, keys: set[TopicPartitionKey]) -> int:
        """Drop partitions this consumer no longer owns; returns how many invoices were dropped.

        Their invoices are not lost: the offsets were not committed past them, so
        the partition's new owner reads them again.
        """
        dropped = sum(len(self._unsettled.pop(k, {})) for k in keys)
        for k in keys:
            self._read_up_to.pop(k, None)
        self._schedule = [item for item in self._schedule if item[2].key not in keys]
        heapq.heapify(self._schedule)
        self._ready = deque(e for e in self._ready if e.key not in keys)
        return dropped
