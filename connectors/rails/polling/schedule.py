"""Which delivered documents are due a poll (pure: the time is passed in).

A document is polled at once after its delivery, then again ``interval`` after its
last poll, doubling with every poll that found nothing new, up to ``max_interval``:
an invoice paid within the hour is seen within minutes, while one left open for a
month costs a few calls a day, not one every five minutes. A change (say, a partial
payment) starts the doubling over. Paid, voided and refunded documents are settled
and not polled again: the rails' refunds are credit documents Railyard issues itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from connectors.rails.notifications.mapping import PaymentStatus

SETTLED = frozenset({PaymentStatus.PAID, PaymentStatus.VOIDED, PaymentStatus.REFUNDED})
"""Statuses after which a document is no longer polled."""


@dataclass(frozen=True)
class Backoff:
    interval: timedelta = timedelta(minutes=5)
    max_interval: timedelta = timedelta(hours=6)

    def __post_init__(self) -> None:
        if self.interval <= timedelta(0) or self.max_interval < self.interval:
            raise ValueError("poll interval must be positive and at most the maximum interval")

    def wait(self, unchanged: int) -> timedelta:
        """The wait after a poll that followed ``unchanged`` polls finding nothing new."""
        if unchanged >= 32:  # 2**32 intervals is past any maximum: avoid the huge product
            return self.max_interval
        return min(self.max_interval, self.interval * (1 << unchanged))


@dataclass(frozen=True)
class Tracked:
    """A delivered document and how its polling stands."""

    invoice_id: str
    delivered_at: datetime
    last_poll: datetime | None = None
    unchanged: int = 0
    """Polls since the last change that found nothing new."""
    status: PaymentStatus | None = None
    """The latest payment status recorded for it (None: none yet)."""

    @property
    def settled(self) -> bool:
        return self.status in SETTLED


def next_poll(doc: Tracked, backoff: Backoff) -> datetime | None:
    """When ``doc`` is due next; None once it is settled."""
    if doc.settled:
        return None
    if doc.last_poll is None:
        return doc.delivered_at
    return doc.last_poll + backoff.wait(doc.unchanged)


def due(
    docs: Iterable[Tracked], now: datetime, backoff: Backoff, limit: int | None = None
) -> list[Tracked]:
    """The documents due at ``now``, most overdue first (then by invoice id), at most ``limit``."""
    ready = [
        (at, d.invoice_id, d)
        for d in docs
        if (at := next_poll(d, backoff)) is not None and at <= now
    ]
    ready.sort(key=lambda t: (t[0], t[1]))
    chosen = [d for _, _, d in ready]
    return chosen if limit is None else chosen[:limit]


def polled(doc: Tracked, at: datetime, status: PaymentStatus | None, changed: bool) -> Tracked:
    """``doc`` after a poll at ``at`` that found ``status``."""
    return replace(
        doc,
        last_poll=at,
        unchanged=0 if changed else doc.unchanged + 1,
        status=status if changed else doc.status,
    )
