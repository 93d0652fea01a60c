"""One partition's billing book: the usage it has seen, what it has issued, and what is due.

The rate stage keeps one :class:`BillingBook` per partition of ``usage.windows``
(customers are partitioned the same way everywhere). The book is a pure function
of three inputs:

* window partials (absolute, newest revision wins) and late usage (by event digest),
* the event-time watermark of the partition, carried by every window batch,
* the invoices already issued for the partition's customers (the ``invoices`` topic).

Every change to the first two is also written to :attr:`BillingBook.journal`; the
rate stage publishes it to the compacted ``billing.book`` topic, and a restarted
worker rebuilds the book from there (:meth:`BillingBook.restore`) and from
``invoices`` (kept for good), never from inputs whose retention may have expired.

Periods close when the watermark passes their end plus a grace period, or when an
operator says so; an issued period is never issued again. Usage or a catalog fix
that changes an issued period is billed as an adjustment line on the customer's
next invoice: the difference between the period rated now and what was billed
for it (its own lines plus adjustments already made), so nothing is billed twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

from streams.domain.catalog import Catalog
from streams.domain.invoice import Invoice, InvoiceLine, LineKind
from streams.domain.partials import Partial
from streams.domain.rating import (
    BillingPeriod,
    billing_period,
    next_period,
    period_of_month,
    round_money,
)
from streams.domain.rating.assemble import LateQuantity, WindowTotal, credit_note, rate_period
from streams.domain.watermarks import EPOCH

SeriesKey = tuple[str, tuple[str, ...], datetime]
"""(meter, group values, window start)."""


@dataclass
class CustomerUsage:
    windows: dict[SeriesKey, tuple[Partial | Decimal, int]] = field(default_factory=dict)
    """Newest (partial, revision) per window."""
    late: dict[tuple[bytes, str], LateQuantity] = field(default_factory=dict)
    """Usage later than the window stage's lateness bound, by event digest and meter."""
    revision: int = 0
    """Grows with every change folded in: orders the running-spend records."""
    sealed: Seal | None = None
    """Usage before ``sealed.through`` is settled for good and no longer held."""
    first_seen: datetime | None = None
    """Time of the customer's first usage: event time bills no period ending before it."""

    def saw(self, at: datetime) -> None:
        if self.first_seen is None or at < self.first_seen:
            self.first_seen = at


@dataclass(frozen=True)
class WindowChange:
    customer: str
    meter: str
    group: tuple[str, ...]
    window_start: datetime
    value: Partial | Decimal
    """The window's partial (a bare value only where it merges exactly: see inputs.py)."""
    revision: int


@dataclass(frozen=True)
class LateChange:
    customer: str
    digest: bytes
    usage: LateQuantity


class WatermarkChange(NamedTuple):
    watermark: datetime


@dataclass(frozen=True)
class Seal:
    """A customer's usage before ``through`` is settled for good: every period ending by
    then was invoiced, and is older than any event ingest still accepts."""

    customer: str
    through: datetime
    revision: int
    """Revisions of the usage dropped so far: the running-spend order never goes back."""


@dataclass(frozen=True)
class Forget:
    """An entry the book no longer holds (persisted as a tombstone)."""

    entry: WindowChange | LateChange


JournalEntry = WindowChange | LateChange | WatermarkChange | Seal | Forget
"""A change to the book, as the rate stage persists it (the newest per key wins)."""


class BillingBook:
    def __init__(self, grace: timedelta) -> None:
        self.grace = grace
        self.watermark = EPOCH
        self.usage: dict[str, CustomerUsage] = {}
        self.journal: list[JournalEntry] = []
        """Changes folded in since the caller last took them (:meth:`take_journal`)."""
        self.refused = 0
        """Usage for sealed periods that arrived anyway (older than ingest accepts): ignored."""
        self.issued: dict[tuple[str, datetime], Invoice] = {}
        self.billed: dict[tuple[str, datetime], Decimal] = {}
        """Per (customer, period start): its own subtotal plus adjustments billed for it since."""

    # -- inputs -----------------------------------------------------------------------

    def fold_windows(self, changes: Iterable[WindowChange]) -> set[str]:
        """Apply window totals; returns the customers whose usage changed."""
        changed: set[str] = set()
        for c in changes:
            usage = self.usage.setdefault(c.customer, CustomerUsage())
            if usage.sealed is not None and c.window_start < usage.sealed.through:
                self.refused += 1
                continue
            key = (c.meter, c.group, c.window_start)
            held = usage.windows.get(key)
            if held is not None and held[1] >= c.revision:
                continue  # a replay, or an older revision arriving late
            usage.windows[key] = (c.value, c.revision)
            usage.revision += c.revision - (held[1] if held else 0)
            usage.saw(c.window_start)
            changed.add(c.customer)
            self.journal.append(c)
        return changed

    def fold_late(self, changes: Iterable[LateChange]) -> set[str]:
        changed: set[str] = set()
        for c in changes:
            usage = self.usage.setdefault(c.customer, CustomerUsage())
            key = (c.digest, c.usage.meter)  # one event feeds several meters
            if usage.sealed is not None and c.usage.time < usage.sealed.through:
                self.refused += 1
                continue
            if key not in usage.late:
                usage.late[key] = c.usage
                usage.revision += 1
                usage.saw(c.usage.time)
                changed.add(c.customer)
                self.journal.append(c)
        return changed

    def advance(self, watermark: datetime) -> set[str]:
        """Move event time on; returns the customers whose running spend it changes.

        Periods start at midnight UTC, so a new day of event time can open a new period
        (the first watermark opens every one): every customer with usage is redrafted
        then, even if no usage of theirs came with it.
        """
        if watermark <= self.watermark:
            return set()
        new_day = watermark.date() != self.watermark.date()
        self.watermark = watermark
        self.journal.append(WatermarkChange(watermark))
        return set(self.usage) if new_day else set()

    def take_journal(self) -> list[JournalEntry]:
        """The changes since the last call, to persist; the journal starts empty again."""
        taken, self.journal = self.journal, []
        return taken

    def restore(self, entries: Iterable[JournalEntry]) -> None:
        """Fold persisted changes back in (a restart); they are not journaled again."""
        entries = list(entries)
        for e in entries:
            if isinstance(e, Seal):
                usage = self.usage.setdefault(e.customer, CustomerUsage())
                usage.sealed = e
                usage.revision += e.revision
        self.fold_windows([e for e in entries if isinstance(e, WindowChange)])
        for e in entries:
            if isinstance(e, LateChange):
                self.fold_late((e,))
            elif isinstance(e, WatermarkChange):
                self.advance(e.watermark)
        self.journal.clear()

    def seal(self, catalog: Catalog, horizon: timedelta) -> int:
        """Drop the usage of invoiced periods that ended ``horizon`` (the oldest event
        ingest accepts, plus margins) before the watermark: nothing can change them any
        more, so neither memory nor ``billing.book`` keeps them. Returns entries dropped.

        A customer's periods are sealed in order, up to the first one not invoiced.
        """
        dropped = 0
        for customer, usage in self.usage.items():
            found = catalog.customer(customer)
            if found is None or usage.first_seen is None:
                continue
            through = usage.sealed.through if usage.sealed else None
            p = billing_period(found.billing.anchor_day, through or usage.first_seen)
            while (customer, p.start) in self.issued and p.end + horizon <= self.watermark:
                through = p.end
                p = next_period(p)
            if through is None or (usage.sealed and through <= usage.sealed.through):
                continue
            revision = usage.sealed.revision if usage.sealed else 0
            for series in [k for k in usage.windows if k[2] < through]:
                value, rev = usage.windows.pop(series)
                revision += rev
                dropped += 1
                self.journal.append(Forget(WindowChange(customer, *series, value, rev)))
            for event in [k for k, q in usage.late.items() if q.time < through]:
                quantity = usage.late.pop(event)
                revision += 1
                dropped += 1
                self.journal.append(Forget(LateChange(customer, event[0], quantity)))
            usage.sealed = Seal(customer, through, revision)
            self.journal.append(usage.sealed)
        return dropped

    def record_issued(self, invoice: Invoice) -> None:
        """Remember an issued invoice (one this stage sent, or one read back after a restart)."""
        key = (invoice.customer, invoice.period_start)
        if key in self.issued:
            return
        self.issued[key] = invoice
        own = sum(
            (ln.amount for ln in invoice.lines if ln.kind is not LineKind.ADJUSTMENT), Decimal(0)
        )
        self.billed[key] = self.billed.get(key, Decimal(0)) + own
        for ln in invoice.lines:
            if ln.kind is LineKind.ADJUSTMENT and ln.service_start is not None:
                corrected = (invoice.customer, ln.service_start)
                self.billed[corrected] = self.billed.get(corrected, Decimal(0)) + ln.amount

    # -- questions --------------------------------------------------------------------

    def windows_in(self, customer: str, period: BillingPeriod) -> list[WindowTotal]:
        usage = self.usage.get(customer)
        if usage is None:
            return []
        return [
            WindowTotal(meter, group, start, value)
            for (meter, group, start), (value, _) in usage.windows.items()
            if period.start <= start < period.end
        ]

    def late_in(self, customer: str, period: BillingPeriod) -> list[LateQuantity]:
        usage = self.usage.get(customer)
        if usage is None:
            return []
        return [q for q in usage.late.values() if period.start <= q.time < period.end]

    def consumed_credits(self, customer: str) -> dict[str, Decimal]:
        consumed: dict[str, Decimal] = {}
        for (who, _), inv in self.issued.items():
            if who == customer:
                for c in inv.credits:
                    consumed[c.grant] = consumed.get(c.grant, Decimal(0)) + c.amount
        return consumed

    def open_period(self, catalog: Catalog, customer: str) -> BillingPeriod | None:
        found = catalog.customer(customer)
        if found is None or self.watermark == EPOCH:
            return None
        return billing_period(found.billing.anchor_day, self.watermark)

    def due(
        self, catalog: Catalog, customers: Iterable[str], month: str | None = None
    ) -> list[tuple[str, BillingPeriod]]:
        """Periods ready to invoice: ended (plus grace) by the watermark, or starting in ``month``.

        Only periods that end after the customer's first usage: billing starts with the
        period of a customer's first usage, as in ``railyard simulate``. ``month`` (YYYY-MM) is an operator's
        explicit close: each customer's period that starts in that month closes now.
        """
        out: list[tuple[str, BillingPeriod]] = []
        for customer in sorted(customers):
            found = catalog.customer(customer)
            usage = self.usage.get(customer)
            first_seen = usage.first_seen if usage else None
            if found is None or (first_seen is None and month is None):
                continue
            anchor = found.billing.anchor_day
            candidates: list[BillingPeriod] = []
            if month is not None:
                candidates.append(period_of_month(anchor, month))
            else:
                assert first_seen is not None
                p = billing_period(anchor, first_seen)
                while p.end + self.grace <= self.watermark:
                    candidates.append(p)
                    p = next_period(p)
            out += [(customer, p) for p in candidates if (customer, p.start) not in self.issued]
        return out

    def invoice(
        self, catalog: Catalog, customer: str, period: BillingPeriod, issued_at: datetime
    ) -> Invoice | None:
        """The invoice for ``period``, with adjustments for issued periods that changed since.

        A customer no longer subscribed gets no invoice; corrections owed to it then go
        out as a credit note. (Corrections it owes wait for its next invoice.)
        """
        adjustments = self.adjustments(catalog, customer, before=period.start)
        invoice = rate_period(
            catalog,
            customer,
            period,
            self.windows_in(customer, period),
            self.late_in(customer, period),
            consumed_credits=self.consumed_credits(customer),
            adjustments=adjustments,
            issued_at=issued_at,
        )
        if invoice is None and sum((a.amount for a in adjustments), Decimal(0)) < 0:
            return credit_note(catalog, customer, period, adjustments, issued_at=issued_at)
        return invoice

    def draft(self, catalog: Catalog, customer: str) -> Invoice | None:
        """The open period rated as if it closed now: the running spend."""
        period = self.open_period(catalog, customer)
        if period is None or (customer, period.start) in self.issued:
            return None
        return self.invoice(catalog, customer, period, issued_at=self.watermark)

    def adjustments(self, catalog: Catalog, customer: str, before: datetime) -> list[InvoiceLine]:
        """One line per issued period whose rating changed since it was billed."""
        lines: list[InvoiceLine] = []
        usage = self.usage.get(customer)
        sealed = usage.sealed.through if usage and usage.sealed else None
        for (who, start), inv in sorted(self.issued.items(), key=lambda kv: kv[0][1]):
            if who != customer or start >= before or (sealed and inv.period_end <= sealed):
                continue
            period = BillingPeriod(inv.period_start, inv.period_end)
            now = rate_period(
                catalog,
                customer,
                period,
                self.windows_in(customer, period),
                self.late_in(customer, period),
                issued_at=inv.issued_at,
            )
            if now is None:
                continue
            own = sum(
                (ln.amount for ln in now.lines if ln.kind is not LineKind.ADJUSTMENT), Decimal(0)
            )
            delta = round_money(own - self.billed.get((who, start), Decimal(0)), inv.currency)
            if delta:
                lines.append(
                    InvoiceLine(
                        LineKind.ADJUSTMENT,
                        f"Correction to {inv.number} ({start:%Y-%m-%d} - {inv.period_end:%Y-%m-%d})",
                        delta,
                        service_start=start,
                        service_end=inv.period_end,
                    )
                )
        return lines

    def revision(self, customer: str) -> int:
        usage = self.usage.get(customer)
        return usage.revision if usage else 0
