"""The batch oracle: CloudEvents JSON lines to invoices, with no Kafka in between.

Every stage applies the stream's own rules, as pure functions: ingest's
validation and de-duplication (:func:`check_event`, :func:`event_digest`),
attribution at the event's time (:meth:`Catalog.customer_for`), metering
(:func:`contributions`), the window oracle (:func:`batch_aggregate`, everything on
time) and :func:`rate_period`. The result depends on the lines, the catalog and
``now`` (which only bounds how old or new an event may be), never on the wall
clock or the order of lines within a window, so the stream's rate stage must
issue equal invoices for the same lines.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from streams.domain.catalog import Catalog
from streams.domain.cloudevents import from_json
from streams.domain.dedup import event_digest
from streams.domain.invoice import Invoice
from streams.domain.metering import Contribution, contributions
from streams.domain.rejections import Reason, Rejection
from streams.domain.usage import UsageEvent
from streams.domain.validation import Limits, check_event
from streams.domain.windows import WindowSize, batch_aggregate

from .assemble import rate_period
from .credits import consumed_after
from .inputs import WindowTotal
from .periods import BillingPeriod, billing_period, period_of_month, periods_between

MAX_MESSAGE_BYTES = 1 << 20
"""The stream's default ``RAILYARD_MAX_MESSAGE_BYTES``: each line is one message."""


@dataclass(frozen=True)
class SimulationResult:
    invoices: tuple[Invoice, ...]
    """In (customer, period start) order."""
    rejected: Mapping[str, int] = field(default_factory=dict)
    """Lines ingest would dead-letter, by reason."""
    duplicates: int = 0
    """Re-sent events (same source and id as an earlier line), dropped."""
    unattributed: int = 0
    """Accepted events whose subject no customer owned at the event's time (parked)."""
    accepted: int = 0
    """Distinct valid events, attributed or not."""
    windows: tuple[tuple[str, WindowTotal], ...] = ()
    """(customer, window total) of every window computed, for inspection."""


def simulate(
    catalog: Catalog,
    raw_events: Iterable[bytes | str],
    period: BillingPeriod | str | None,
    now: datetime,
    *,
    window: WindowSize = WindowSize.HOUR,
    limits: Limits | None = None,
    max_message_bytes: int = MAX_MESSAGE_BYTES,
) -> SimulationResult:
    """Price ``raw_events`` (one CloudEvents JSON object per line) in batch.

    ``period``: None rates every (customer, billing period) that has usage; a
    ``"YYYY-MM"`` month rates every customer's period starting in that month and a
    :class:`BillingPeriod` that very period for every customer, usage or not (as an
    operator's close does in the stream). Customers not subscribed get no invoice.
    ``now`` is the clock ingest validates event times against; ``limits`` default
    to the stream's. Blank lines are skipped; every other line counts.
    """
    limits = limits or Limits()
    screened = _screen(catalog, raw_events, now, limits, max_message_bytes)
    by_customer: dict[str, list[WindowTotal]] = {}
    for key, value in sorted(batch_aggregate(screened.pairs, window).items()):
        total = WindowTotal(key.meter, key.group, key.start, value)
        by_customer.setdefault(key.customer, []).append(total)
    invoices: list[Invoice] = []
    for customer, periods, wanted in _periods(catalog, by_customer, period):
        windows = by_customer.get(customer, [])
        consumed: dict[str, Decimal] = {}
        for p in periods:
            invoice = rate_period(catalog, customer, p, windows, consumed_credits=consumed)
            if invoice is None:
                continue
            consumed = consumed_after(consumed, invoice.credits)
            if p in wanted:
                invoices.append(invoice)
    return SimulationResult(
        invoices=tuple(invoices),
        rejected=dict(sorted(screened.rejected.items())),
        duplicates=screened.duplicates,
        unattributed=screened.unattributed,
        accepted=screened.accepted,
        windows=tuple((c, w) for c, ws in sorted(by_customer.items()) for w in ws),
    )


@dataclass
class _Screened:
    pairs: list[tuple[str, Contribution]] = field(default_factory=list)
    rejected: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    unattributed: int = 0
    accepted: int = 0


def _screen(
    catalog: Catalog,
    lines: Iterable[bytes | str],
    now: datetime,
    limits: Limits,
    max_message_bytes: int,
) -> _Screened:
    """Ingest, attribution and metering of every line, as the stream does them."""
    out = _Screened()
    seen: set[bytes] = set()
    meters = catalog.meter_index
    for line in lines:
        payload = line.encode() if isinstance(line, str) else line
        if not payload.strip():
            continue
        event = _event(payload, now, limits, max_message_bytes, catalog)
        if isinstance(event, Rejection):
            out.rejected[event.reason.value] += 1
            continue
        digest = event_digest(event.source, event.id)
        if digest in seen:
            out.duplicates += 1
            continue
        seen.add(digest)
        out.accepted += 1
        customer = catalog.customer_for(event.subject, event.time)
        if customer is None:
            out.unattributed += 1
            continue
        for c in contributions(event, meters.by_type.get(event.type, ()), digest):
            out.pairs.append((customer, c))
    return out


def _event(
    payload: bytes, now: datetime, limits: Limits, max_message_bytes: int, catalog: Catalog
) -> UsageEvent | Rejection:
    """One line as ingest's ``screen`` judges a one-event JSON message."""
    if len(payload) > max_message_bytes:
        detail = f"message is {len(payload)} bytes, limit {max_message_bytes}"
        return Rejection(Reason.OVERSIZED_PAYLOAD, detail)
    if payload[:1] != b"{":
        return Rejection(Reason.MALFORMED_PAYLOAD, "neither Avro framing nor a JSON object")
    event = from_json(payload)
    if isinstance(event, Rejection):
        return event
    small = len(payload) <= limits.max_event_bytes
    rejection = check_event(event, now, limits, catalog.meter_index, size_known_ok=small)
    return event if rejection is None else rejection


def _periods(
    catalog: Catalog,
    usage: Mapping[str, list[WindowTotal]],
    period: BillingPeriod | str | None,
) -> list[tuple[str, list[BillingPeriod], set[BillingPeriod]]]:
    """Each customer to rate, every period to rate in order, and the ones asked for.

    Every period from the customer's first usage on is rated, whatever was asked:
    credit burned by an earlier period is gone for a later one, exactly as in the
    stream, so asking for one month gives the same invoice as asking for them all.
    """
    out: list[tuple[str, list[BillingPeriod], set[BillingPeriod]]] = []
    for c in catalog.customers if period is not None else ():
        anchor = c.billing.anchor_day
        chosen = period_of_month(anchor, period) if isinstance(period, str) else period
        windows = usage.get(c.key, [])
        first = min((w.window_start for w in windows), default=chosen.start)
        chain = list(periods_between(anchor, min(first, chosen.start), chosen.end))
        out.append((c.key, chain, {chosen}))
    for customer, windows in sorted(usage.items()) if period is None else ():
        found = catalog.customer(customer)
        if found is None:
            continue
        anchor = found.billing.anchor_day
        first = min(w.window_start for w in windows)
        last = max(w.window_start for w in windows)
        chain = list(periods_between(anchor, first, billing_period(anchor, last).end))
        touched = {billing_period(anchor, w.window_start) for w in windows}
        out.append((customer, chain, touched))
    return out
