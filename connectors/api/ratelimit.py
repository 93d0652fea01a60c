"""A token bucket per API key, with the clock passed in (seconds, monotonic).

Each event costs a token; tokens refill at ``rate`` per second up to ``burst``. A
request larger than the bucket is let through when the bucket is full and leaves it in
debt, so no request size is refused forever: it waits its turn like the others.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(slots=True)
class Bucket:
    rate: float
    burst: float
    tokens: float
    at: float

    @classmethod
    def full(cls, rate: float, burst: float, now: float) -> Bucket:
        return cls(rate, burst, burst, now)

    def _refill(self, now: float) -> None:
        if now > self.at:
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
            self.at = now

    def take(self, cost: int, now: float) -> float:
        """Take ``cost`` tokens and return 0, or take none and return the seconds to wait
        before the request would be let through."""
        self._refill(now)
        need = min(float(cost), self.burst)
        if self.tokens >= need:
            self.tokens -= cost
            return 0.0
        return (need - self.tokens) / self.rate


def retry_after(wait_s: float) -> int:
    """Whole seconds for ``Retry-After``: at least 1, rounded up."""
    return max(1, math.ceil(wait_s))


class Buckets:
    """One bucket per key id, made full on first use."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, Bucket] = {}

    def take(self, key_id: str, cost: int, now: float) -> float:
        bucket = self._buckets.get(key_id)
        if bucket is None:
            bucket = self._buckets[key_id] = Bucket.full(self.rate, self.burst, now)
        return bucket.take(cost, now)
