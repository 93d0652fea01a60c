"""Memory of which events a partition has already accepted.

An event is identified by a 128-bit digest of ``(source, id)``. For each digest we
keep the *position* where it was first accepted (``offset << 16 | index`` inside a
batch message). That makes re-processing after a crash safe: the same record seen
again at the same position is a *replay* (emit it again; everything downstream is
idempotent by event id), while the same event at any other position is a
*duplicate* (drop it). Entries are forgotten ``retention`` after they arrived.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Iterable
from enum import StrEnum
from hashlib import blake2b

_ENTRY = struct.Struct("<16sq")
MAX_BATCH_INDEX = 1 << 16


def event_digest(source: str, event_id: str) -> bytes:
    # Length-prefixed, so no choice of characters in source can shift the boundary.
    return blake2b(f"{len(source)}:{source}{event_id}".encode(), digest_size=16).digest()


def position(offset: int, index: int) -> int:
    if not 0 <= index < MAX_BATCH_INDEX:
        raise ValueError(f"batch index {index} out of range")
    return (offset << 16) | index


class Verdict(StrEnum):
    NEW = "new"
    REPLAY = "replay"
    DUPLICATE = "duplicate"


class SeenEvents:
    """Digest -> first position, for one partition of the usage topic."""

    __slots__ = ("_first", "_arrivals")

    def __init__(self) -> None:
        self._first: dict[bytes, int] = {}
        self._arrivals: deque[tuple[float, int]] = deque()

    def __len__(self) -> int:
        return len(self._first)

    def classify(self, digest: bytes, pos: int) -> Verdict:
        first = self._first.get(digest)
        if first is None:
            return Verdict.NEW
        return Verdict.REPLAY if first == pos else Verdict.DUPLICATE

    def admit(self, digest: bytes, pos: int) -> bool:
        """Remember the digest; True when the event must be emitted (new or replay).

        Remembering at once means a duplicate later in the same batch is caught too.
        Call :meth:`mark_arrival` once per batch so retention can find these entries.
        """
        return self._first.setdefault(digest, pos) == pos

    def mark_arrival(self, top_position: int, arrived_at: float) -> None:
        self._arrivals.append((arrived_at, top_position))

    def remember(self, entries: Iterable[tuple[bytes, int]], arrived_at: float) -> None:
        """Record newly accepted digests (setdefault: the first position always wins)."""
        top = -1
        first = self._first
        for digest, pos in entries:
            first.setdefault(digest, pos)
            top = max(top, pos)
        if top >= 0:
            self._arrivals.append((arrived_at, top))

    def forget_arrived_before(self, cutoff: float) -> int:
        """Drop entries that arrived before ``cutoff`` (epoch seconds); returns how many."""
        horizon = -1
        while self._arrivals and self._arrivals[0][0] < cutoff:
            horizon = max(horizon, self._arrivals.popleft()[1])
        if horizon < 0:
            return 0
        stale = [d for d, pos in self._first.items() if pos <= horizon]
        for d in stale:
            del self._first[d]
        return len(stale)


def pack_entries(entries: Iterable[tuple[bytes, int]]) -> bytes:
    """The changelog record body for a batch of newly accepted digests."""
    return b"".join(_ENTRY.pack(d, p) for d, p in entries)


def unpack_entries(body: bytes) -> list[tuple[bytes, int]]:
    if len(body) % _ENTRY.size:
        raise ValueError("dedup log record is truncated")
    return [_ENTRY.unpack_from(body, i) for i in range(0, len(body), _ENTRY.size)]
