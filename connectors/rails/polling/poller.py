"""``railyard rails poll RAIL``: read each delivered document's payment state from the rail.

For rails that send no payment notifications (NetSuite, SAP, Salesforce). The poller
follows ``invoices.status`` (the runner's ``delivered`` steps say what the rail holds
and under which ids; earlier payment steps say what is already recorded), asks the
rail for each document that is due (:mod:`schedule`), reads the answer
(:mod:`states`) and publishes a change as the notification receiver does: the same
record (:func:`~connectors.rails.notifications.ledger.notification_record`), keyed by
the invoice id, acknowledged by the broker before the document counts as polled.

A restart rebuilds everything from the topic, so a change already recorded is never
published again, and the event id is derived from the invoice and its count of
payment steps, so two pollers that see the same change publish the same event id.
A rail error on one document is logged (through ``RailConfig.redact``) and counts as a
poll that found nothing new: the back-off keeps a failing rail from being hammered.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

from connectors.metrics import INVOICE_PAYMENTS
from connectors.rails.base import Delivery, RailError
from connectors.rails.config import RailConfig
from connectors.rails.notifications.ledger import Ledger, notification_record
from connectors.rails.notifications.mapping import Notification, PaymentStatus
from connectors.rails.polling.schedule import Backoff, Tracked, due, next_poll, polled
from connectors.rails.polling.states import READERS, StateError, changed, event_id
from connectors.rails.status_feed import StatusFeed, StatusPublisher
from streams.domain.errors import ConfigError
from streams.settings import Settings, parse_duration

log = logging.getLogger(__name__)

AMOUNT_PAID = "amount_paid"
"""The ``references`` key of a polled step holding what the rail says is paid so far."""
PAYMENT_STATUSES = frozenset(
    s.value for s in PaymentStatus if s not in (PaymentStatus.ISSUED, PaymentStatus.DELIVERED)
)


def _check_polled(rail: str) -> None:
    if rail not in READERS:
        raise ConfigError(
            f"rail {rail}: not polled (polled: {', '.join(sorted(READERS))}; "
            "Stripe, Adyen and PayPal notify: railyard rails listen)"
        )


@runtime_checkable
class Polled(Protocol):
    """A rail the poller can read: its provider module's ``payment_fields``."""

    def payment_fields(self, delivery: Delivery) -> Mapping[str, Any] | None: ...


@dataclass(frozen=True)
class PollSettings:
    backoff: Backoff
    terms: timedelta
    """Payment is due this long after issue when the rail gives no due date."""

    @classmethod
    def from_config(cls, config: RailConfig) -> PollSettings:
        """``POLL_INTERVAL`` [5m], ``POLL_MAX_INTERVAL`` [6h], ``PAYMENT_TERMS`` [30d]."""
        interval = parse_duration(config.get("poll_interval") or "5m")
        maximum = parse_duration(config.get("poll_max_interval") or "6h")
        try:
            backoff = Backoff(interval, max(interval, maximum))
        except ValueError as exc:
            raise ConfigError(f"rail {config.rail}: {exc}") from None
        return cls(backoff, parse_duration(config.get("payment_terms") or "30d"))


@dataclass
class PollStats:
    polled: int = 0
    published: int = 0
    errors: int = 0


@dataclass
class _Recorded:
    """What ``invoices.status`` says of one invoice delivered through the rail."""

    references: Mapping[str, str]
    steps: int = 0
    """Payment steps recorded so far."""
    amount_paid: Decimal | None = None
    """The latest payment status is its :class:`Tracked`'s."""


@dataclass
class Poller:
    settings: Settings
    config: RailConfig
    rail: Polled
    clock: Callable[[], datetime]
    poll: PollSettings
    ledger: Ledger = field(init=False)
    tracked: dict[str, Tracked] = field(init=False, default_factory=dict)
    recorded: dict[str, _Recorded] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        _check_polled(self.config.rail)
        self.name = self.config.rail
        self.read = READERS[self.name]
        self.ledger = Ledger(self.name)
        self.statuses = StatusPublisher(self.settings, self.name)
        self.feed = StatusFeed(self.settings, "railyard-poll")

    # -- what the topic says ----------------------------------------------------------------

    def refresh(self) -> int:
        """Take in the ``invoices.status`` records published since the last refresh."""
        records = self.feed.read_new()
        for record in records:
            self.take(record)
        return len(records)

    def take(self, step: Mapping[str, Any]) -> None:
        """One ``invoice_status`` record (any rail's: others are ignored)."""
        if step["rail"] != self.name:
            return
        self.ledger.add(step)
        invoice_id, status = step["invoice_id"], step["status"]
        if status == "delivered":
            self.recorded.setdefault(invoice_id, _Recorded(step["references"]))
            self.recorded[invoice_id].references = step["references"]
            self.tracked.setdefault(invoice_id, Tracked(invoice_id, step["at"]))
        elif status in PAYMENT_STATUSES and invoice_id in self.recorded:
            seen = self.recorded[invoice_id]
            paid = (step.get("references") or {}).get(AMOUNT_PAID)
            seen.steps += 1
            seen.amount_paid = Decimal(paid) if paid else None
            doc = self.tracked.get(invoice_id)  # None: a credit document, no longer polled
            if doc is not None:
                self.tracked[invoice_id] = replace(doc, status=PaymentStatus(status))

    # -- polling ----------------------------------------------------------------------------

    def poll_once(self, limit: int | None = None) -> PollStats:
        """Refresh from the topic, then poll every document due now."""
        self.refresh()
        stats = PollStats()
        now = self.clock()
        for doc in due(self.tracked.values(), now, self.poll.backoff, limit):
            stats.polled += 1
            news = self._poll(doc.invoice_id, now)
            if news is None:
                stats.errors += 1
            elif news:
                stats.published += 1
        return stats

    def _poll(self, invoice_id: str, now: datetime) -> bool | None:
        """Poll one document; True if a change was published, None on an error."""
        seen = self.recorded[invoice_id]
        doc = self.tracked[invoice_id]
        try:
            fields = self.rail.payment_fields(Delivery(self.name, invoice_id, seen.references))
            if fields is None:  # a credit document: nothing is paid on it
                del self.tracked[invoice_id]
                return False
            state = self.read(fields, now.date(), self.poll.terms)
        except (RailError, StateError) as exc:
            log.warning("%s poll of %s: %s", self.name, invoice_id, self.config.redact(str(exc)))
            self.tracked[invoice_id] = polled(doc, now, None, changed=False)
            return None
        if not changed(doc.status, seen.amount_paid, state):
            self.tracked[invoice_id] = polled(doc, now, None, changed=False)
            return False
        assert state.status is not None  # changed() says so
        known = self.ledger.by_id[invoice_id]
        note = Notification(
            self.name, event_id(invoice_id, seen.steps, state), state.rail_status, state.status, ()
        )
        extra = {} if state.amount_paid is None else {AMOUNT_PAID: f"{state.amount_paid:f}"}
        record = notification_record(note, known, now, extra)
        if not self.statuses.publish(invoice_id, record):
            return None  # not polled: due again at once
        self.take(record)
        self.tracked[invoice_id] = polled(self.tracked[invoice_id], now, state.status, changed=True)
        INVOICE_PAYMENTS.labels(self.name, str(state.status)).inc()
        log.info(
            "%s: invoice %s is %s (%s)", self.name, known.number, state.status, state.rail_status
        )
        return True

    def next_due(self) -> datetime | None:
        times = [t for d in self.tracked.values() if (t := next_poll(d, self.poll.backoff))]
        return min(times, default=None)

    def run(self, stop: threading.Event, refresh: float = 10.0) -> PollStats:
        """Poll until ``stop`` is set, looking for new deliveries every ``refresh`` seconds."""
        total = PollStats()
        while not stop.is_set():
            stats = self.poll_once()
            total.polled += stats.polled
            total.published += stats.published
            total.errors += stats.errors
            wait = refresh
            if (at := self.next_due()) is not None:
                wait = min(refresh, max(0.2, (at - self.clock()).total_seconds()))
            stop.wait(wait)
        return total

    def close(self) -> None:
        self.statuses.close()
        self.feed.close()


def start_poller(settings: Settings, config: RailConfig, clock: Callable[[], datetime]) -> Poller:
    """A poller for ``config.rail``, the rail created through the registry."""
    from connectors.rails.registry import create

    _check_polled(config.rail)
    rail = create(config.rail, config)
    if not isinstance(rail, Polled):
        raise ConfigError(f"rail {config.rail}: its module reads no payment state")
    return Poller(settings, config, rail, clock, PollSettings.from_config(config))
