"""Running spend: what an open period costs so far, and the credit alerts it crosses.

Pure: the rate stage rates the open period as a draft invoice (:meth:`BillingBook.draft`),
calls :func:`running_spend` with the credit consumption it last reported, and sends
the record and the alerts it returns. Alerts fire only on crossings, so a restarted
stage that starts from the book's own consumption sends none twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from streams.domain.billing_book import BillingBook
from streams.domain.catalog import Catalog
from streams.domain.invoice import Invoice
from streams.domain.rating.assemble import usage_amount
from streams.domain.rating.credits import CreditEvent, balances, consumed_after, threshold_events

_ZERO = Decimal(0)


@dataclass(frozen=True)
class GrantBalance:
    grant: str
    granted: Decimal
    consumed: Decimal
    remaining: Decimal
    expires_at: datetime | None


@dataclass(frozen=True)
class SpendRecord:
    """One customer's open period as rated at ``as_of`` (event time); newer ``revision`` wins."""

    customer: str
    currency: str
    period_start: datetime
    period_end: datetime
    usage_amount: Decimal
    subtotal: Decimal
    credits_total: Decimal
    total: Decimal
    as_of: datetime
    revision: int
    balances: tuple[GrantBalance, ...]


@dataclass(frozen=True)
class RunningSpend:
    record: SpendRecord
    alerts: tuple[CreditEvent, ...]
    consumed: dict[str, Decimal]
    """Credit consumed per grant, issued invoices and the draft together: report it next time."""


def consumed_with_draft(book: BillingBook, customer: str, draft: Invoice) -> dict[str, Decimal]:
    """Credit consumed by the customer's issued invoices plus what the draft would burn."""
    return consumed_after(book.consumed_credits(customer), draft.credits)


def running_spend(
    book: BillingBook,
    catalog: Catalog,
    customer: str,
    draft: Invoice,
    reported: Mapping[str, Decimal] | None,
) -> RunningSpend | None:
    """The spend record and the credit alerts crossed since ``reported`` (the consumption
    last reported; None: what issued invoices consumed). None for an unknown customer."""
    found = catalog.customer(customer)
    if found is None:
        return None
    consumed = consumed_with_draft(book, customer, draft)
    before = reported if reported is not None else book.consumed_credits(customer)
    at = book.watermark
    alerts = threshold_events(
        found.credits, before, consumed, catalog.credit_thresholds, customer=customer, at=at
    )
    left = balances(found.credits, consumed, at)
    record = SpendRecord(
        customer=customer,
        currency=draft.currency,
        period_start=draft.period_start,
        period_end=draft.period_end,
        usage_amount=usage_amount(draft),
        subtotal=draft.subtotal,
        credits_total=draft.credits_total,
        total=draft.total,
        as_of=at,
        revision=book.revision(customer) + len(book.issued),
        balances=tuple(
            GrantBalance(
                g.key, g.amount, consumed.get(g.key, _ZERO), left.get(g.key, _ZERO), g.expires_at
            )
            for g in found.credits
        ),
    )
    return RunningSpend(record, tuple(alerts), consumed)
