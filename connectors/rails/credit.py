"""What every rail needs to turn a credit note into its own credit document.

A credit note (:attr:`DocumentKind.CREDIT_NOTE`) carries negative amounts: it is
the correction as the billing book sees it. A rail's credit document (a Stripe
credit note, an Adyen or PayPal refund, a NetSuite credit memo, ...) already
means "money back", so it takes the same amounts with the sign turned: positive.

The credit note does not name the invoice it credits; it does not need to. The
rating stage identifies a credit note like the invoice of the same customer,
billing period and currency (:func:`~streams.domain.invoice.invoice_identity`),
so that invoice's id, number and idempotency key follow from the note, and every
rail finds the document it delivered for it through its own mechanism.

Consistency with what was paid: a rail refuses (:class:`PermanentRailError`,
code ``credit_exceeds_invoice``) a credit that would take the invoice's credited
total above the invoice total. Retrying could never make it fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from connectors.rails.base import PermanentRailError
from streams.domain.invoice import DocumentKind, Invoice, invoice_identity


@dataclass(frozen=True)
class CreditedInvoice:
    """The invoice a credit note credits, as Railyard identified it when it was issued."""

    id: str
    number: str
    idempotency_key: str


def is_credit(invoice: Invoice) -> bool:
    return invoice.kind is DocumentKind.CREDIT_NOTE


def credited_invoice(note: Invoice) -> CreditedInvoice:
    """The invoice of the note's customer, period and currency."""
    if not is_credit(note):
        raise ValueError(f"{note.number} is not a credit note")
    return CreditedInvoice(*invoice_identity(note.customer, note.period_start, note.currency))


def credit_amount(note: Invoice) -> Decimal:
    """What the note gives back, positive (already rounded to the currency's minor unit)."""
    amount = -note.total
    if amount <= 0:
        raise PermanentRailError(
            f"{note.number}: a credit note must give something back; its total is "
            f"{note.total} {note.currency}",
            code="credit_not_negative",
        )
    return amount


def check_within(
    note: Invoice,
    amount: Decimal,
    credited: Decimal,
    limit: Decimal,
    what: str = "the invoice's total",
) -> None:
    """Refuse ``amount`` when ``credited`` so far plus it exceeds ``limit``.

    ``what`` names the limit in the message: the invoice's total, or what was paid
    on it for a rail that can only give back money it collected.
    """
    if credited + amount > limit:
        invoice = credited_invoice(note)
        raise PermanentRailError(
            f"{note.number} credits {amount} {note.currency} on {invoice.number}, which has "
            f"{credited} of {limit} {note.currency} credited already: that would "
            f"credit more than {what}",
            code="credit_exceeds_invoice",
        )
