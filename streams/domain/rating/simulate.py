"""The batch oracle: CloudEvents JSON lines to invoices, with no Kafka in between.

Ingest's rules screen the lines as pure functions: validation and de-duplication
(:func:`check_event`, :func:`event_digest`), attribution at the event's time
(:meth:`Catalog.customer_for`) and metering (:func:`contributions`). Quantities
then take another route than the stream's: straight from each period's events
(:mod:`.event_usage`), never through windows or partials, so a windowing bug makes
the stream and the oracle disagree instead of agreeing with it. Both price through
:func:`rate_period`. The result depends on the lines, the catalog and ``as_of``
(which only bounds how old or new an event may be), never on the wall clock, the
window size or the order of the lines.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from streams.domain.catalog import Catalog
from streams.domain.invoice import Invoice
from streams.domain.validation import Limits

from .assemble import rate_period
from .credits import consumed_after
from .event_usage import EventUsage, MeteredEvent
from .periods import BillingPeriod, billing_period, period_of_month, periods_between
from .screening import MAX_MESSAGE_BYTES, NotBilled, ParsedLine, parse_lines, screen_parsed

__all__ = ["MAX_MESSAGE_BYTES", "NotBilled", "SimulationResult", "simulate", "simulate_parsed"]


@dataclass(frozen=True)
class SimulationResult:
    invoices: tuple[Invoice, ...]
    """In (customer, period start) order."""
    rejected: Mapping[str, int] = field(default_factory=dict)
    """Lines ingest would dead-letter, by reason (too old ones as timestamp_out_of_range)."""
    duplicates: int = 0
    """Re-sent events (same source and id as an earlier line), dropped."""
    unattributed: int = 0
    """Accepted events whose subject no customer owned at the event's time (parked)."""
    accepted: int = 0
    """Distinct valid events, attributed or not."""
    not_billed: tuple[NotBilled, ...] = ()
    """Every line not billed, in line order, with its reason: rejected, duplicate,
    unattributed or too old (the counts above summarise it)."""
    usage: Mapping[str, EventUsage] = field(default_factory=dict)
    """Each attributed customer's metered events, for inspection."""


def simulate(
    catalog: Catalog,
    raw_events: Iterable[bytes | str],
    period: BillingPeriod | str | None,
    as_of: datetime,
    *,
    limits: Limits | None = None,
    max_message_bytes: int = MAX_MESSAGE_BYTES,
) -> SimulationResult:
    """Price ``raw_events`` (one CloudEvents JSON object per line) in batch.

    ``period``: None rates every (customer, billing period) that has usage; a
    ``"YYYY-MM"`` month rates every customer's period starting in that month and a
    :class:`BillingPeriod` that very period for every customer, usage or not (as an
    operator's close does in the stream). Customers not subscribed get no invoice.
    ``as_of`` is the instant ingest's clock is taken to read when it judges event
    times (older than ``as_of - max_age``: too old; later than ``as_of + max_skew``:
    rejected); :func:`.screening.default_as_of` gives the period's close. ``limits``
    default to the stream's. Blank lines are skipped; every other line counts, and
    lines are numbered from 1 in the order given.
    """
    return simulate_parsed(
        catalog, parse_lines(raw_events, max_message_bytes), period, as_of, limits=limits
    )


def simulate_parsed(
    catalog: Catalog,
    lines: Iterable[ParsedLine],
    period: BillingPeriod | str | None,
    as_of: datetime,
    *,
    limits: Limits | None = None,
) -> SimulationResult:
    """:func:`simulate` of lines :func:`.screening.parse_lines` already read.

    Parsing needs neither the catalog nor ``as_of``, so a caller pricing the same lines
    under two catalogs (the console's what-if) parses them once and passes the same
    records to both runs, and to :func:`.screening.default_as_of_parsed`; the result is
    :func:`simulate`'s on the lines themselves.
    """
    limits = limits or Limits()
    screened = screen_parsed(catalog, lines, as_of, limits)
    metered: dict[str, list[MeteredEvent]] = {}
    for customer, c in screened.pairs:
        event = MeteredEvent(c.meter, c.group, c.time, c.digest, c.value)
        metered.setdefault(customer, []).append(event)
    by_customer = {customer: EventUsage(events) for customer, events in sorted(metered.items())}
    invoices: list[Invoice] = []
    for customer, periods, wanted in _periods(catalog, by_customer, period):
        usage = by_customer.get(customer, EventUsage(()))
        consumed: dict[str, Decimal] = {}
        for p in periods:
            invoice = rate_period(catalog, customer, p, usage, consumed_credits=consumed)
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
        not_billed=tuple(screened.not_billed),
        usage=by_customer,
    )


def _periods(
    catalog: Catalog,
    usage: Mapping[str, EventUsage],
    period: BillingPeriod | str | None,
) -> list[tuple[str, list[BillingPeriod], set[BillingPeriod]]]:
    """Each customer to rate, every period to rate in order, and the ones asked for.

    Every period from the customer's first usage on is rated, whatever was asked:
    credit burned by an earlier period is gone for a later one, exactly as in the
    stream, so asking for one month gives the same invoice as asking for them all.
    """
    out: list[tuple[str, list[BillingPeriod], set[BillingPeriod]]] = []
    if period is None:
        for customer, events in sorted(usage.items()):
            found = catalog.customer(customer)
            if found is None:
                continue
            anchor = found.billing.anchor_day
            times = [e.time for es in events.events.values() for e in es]
            last = billing_period(anchor, max(times))
            chain = list(periods_between(anchor, min(times), last.end))
            out.append((customer, chain, {billing_period(anchor, t) for t in times}))
        return out
    for c in catalog.customers:
        anchor = c.billing.anchor_day
        chosen = period_of_month(anchor, period) if isinstance(period, str) else period
        own = usage.get(c.key)
        first = (own.first_time() if own else None) or chosen.start
        chain = list(periods_between(anchor, min(first, chosen.start), chosen.end))
        out.append((c.key, chain, {chosen}))
    return out
