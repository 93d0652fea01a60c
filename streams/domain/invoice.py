"""Invoices: what the rating stage issues and every rail connector delivers.

An invoice is immutable once issued. Its ``id`` and ``idempotency_key`` are
derived from (customer, period, currency, kind), never from wall-clock time or
arrival order, so re-issuing after a crash yields the very same document and the
rails (which receive ``idempotency_key`` through their own mechanism) create it
once. Corrections to an issued invoice travel as adjustment lines on the next
one, or as a credit note when there is no next period.

Money: every ``amount`` is a ``Decimal`` already rounded to the currency's minor
unit; ``unit_amount`` may carry more places (a token can cost USD 0.000002).
Totals are sums of rounded lines.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum


class DocumentKind(StrEnum):
    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"
    """Issued when a correction has no next period to ride on; its total is negative."""


class LineKind(StrEnum):
    """Why a line is on the invoice; the order here is the order lines are applied."""

    USAGE = "usage"
    """Metered usage priced by a usage price (per unit, tiers, package, dimensions)."""
    RECURRING = "recurring"
    """A flat fee, prorated by time when the plan changed mid-period."""
    DISCOUNT = "discount"
    """A percentage discount; a negative amount."""
    COMMITMENT = "commitment"
    """Minimum-commitment true-up: what brings the subtotal up to the commitment."""
    CAP = "cap"
    """Maximum-spend cap: a negative amount bringing the subtotal down to the cap."""
    ADJUSTMENT = "adjustment"
    """A correction to an earlier, already issued period (late usage, catalog fix)."""


@dataclass(frozen=True)
class TierSlice:
    """The part of a line's quantity priced by one tier (graduated or volume)."""

    up_to: Decimal | None
    quantity: Decimal
    unit_amount: Decimal
    flat_amount: Decimal
    amount: Decimal
    """Unrounded: only the line's amount is rounded, once."""


@dataclass(frozen=True)
class InvoiceLine:
    kind: LineKind
    description: str
    amount: Decimal
    price_key: str | None = None
    meter: str | None = None
    dimensions: tuple[tuple[str, str], ...] = ()
    """Group-by values priced by this line, as (property, value) in meter order."""
    quantity: Decimal | None = None
    unit_amount: Decimal | None = None
    tiers: tuple[TierSlice, ...] = ()
    service_start: datetime | None = None
    service_end: datetime | None = None
    """The stretch of the period this line covers (a prorated fee covers part of it)."""


@dataclass(frozen=True)
class CreditApplication:
    """Prepaid credit burned by this invoice, from one grant."""

    grant: str
    amount: Decimal


@dataclass(frozen=True)
class Invoice:
    id: str
    number: str
    kind: DocumentKind
    customer: str
    customer_name: str
    rail: str
    account: str | None
    """The customer's id on the rail (Stripe ``cus_...``, NetSuite internal id, ...)."""
    currency: str
    period_start: datetime
    period_end: datetime
    lines: tuple[InvoiceLine, ...]
    credits: tuple[CreditApplication, ...]
    subtotal: Decimal
    """Sum of all lines (usage, fees, discounts, true-up, cap, adjustments)."""
    discount_total: Decimal
    commitment_true_up: Decimal
    credits_total: Decimal
    total: Decimal
    """``subtotal - credits_total``: what the rail collects."""
    idempotency_key: str
    catalog_version: str
    issued_at: datetime
    """The period's end (event time), never the wall clock: re-issuing yields the same bytes."""

    def __post_init__(self) -> None:
        if sum((line.amount for line in self.lines), Decimal(0)) != self.subtotal:
            raise ValueError(f"invoice {self.id}: subtotal is not the sum of its lines")
        if self.subtotal - self.credits_total != self.total:
            raise ValueError(f"invoice {self.id}: total is not subtotal minus credits")


def invoice_identity(
    customer: str, period_start: datetime, currency: str, kind: DocumentKind = DocumentKind.INVOICE
) -> tuple[str, str, str]:
    """(id, number, idempotency_key): the same for the same customer, period and currency.

    The number is human-readable and unique per customer and period; the id and
    key are hashes so they fit every rail's limits (Stripe keys ≤ 255 chars,
    PayPal-Request-Id ≤ 108, NetSuite externalId ≤ 255 chars without spaces).
    """
    seed = f"{kind.value}|{customer}|{period_start.isoformat()}|{currency}"
    digest = hashlib.sha256(seed.encode()).hexdigest()
    prefix = "CN" if kind is DocumentKind.CREDIT_NOTE else "INV"
    number = f"{prefix}-{period_start:%Y%m%d}-{digest[:8].upper()}"
    return f"{prefix.lower()}_{digest[:24]}", number, f"railyard-{digest[:40]}"


def credited_invoices(note: Invoice) -> tuple[str, ...]:
    """The numbers of the invoices a credit note corrects, in period order.

    Each adjustment line corrects the invoice of the period it covers
    (``service_start`` is that period's start), so the number is derived the way
    the invoice's own was: no lookup, and the same on every replay.
    """
    starts = sorted(
        {
            ln.service_start
            for ln in note.lines
            if ln.kind is LineKind.ADJUSTMENT and ln.service_start
        }
    )
    return tuple(invoice_identity(note.customer, start, note.currency)[1] for start in starts)
