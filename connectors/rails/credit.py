"""What every rail needs to turn a credit note into its own credit document.

A credit note (:attr:`DocumentKind.CREDIT_NOTE`) carries negative amounts: it is
the correction as the billing book sees it. A rail's credit document (a Stripe
credit note, an Adyen or PayPal refund, a NetSuite credit memo, ...) already
means "money back", so it takes the same amounts with the sign turned: positive.

The credit note does not name the invoice it credits by id; it does not need to.
The billing book issues one when a customer owes nothing for a period (its
subscription ended) but an earlier period it was invoiced for cost less than
billed: the note is dated in the later period, and each correction line
(``adjustment``) covers the period it corrects (``service_start``). Invoices are
identified by customer, billing period and currency
(:func:`~streams.domain.invoice.invoice_identity`), so the credited invoice's id,
number and idempotency key follow from that line, and every rail finds the document
it delivered for it through its own mechanism. A note without dated corrections
credits the invoice of its own period.

Consistency with what was paid: a rail refuses (:class:`PermanentRailError`,
code ``credit_exceeds_invoice``) a credit that would take the invoice's credited
total above the invoice total. Retrying could never make it fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from connectors.rails.base import PermanentRailError
from streams.domain.invoice import DocumentKind, Invoice, LineKind, invoice_identity


@dataclass(frozen=True)
class CreditedInvoice:
    """The invoice a credit note credits, as Railyard identified it when it was issued."""

    id: str
    number: str
    idempotency_key: str


def is_credit(invoice: Invoice) -> bool:
    return invoice.kind is DocumentKind.CREDIT_NOTE


def credited_invoice(note: Invoice) -> CreditedInvoice:
    """The invoice the note's correction lines name (by the period they cover), or, with
    none dated, the invoice of the note's own period; same customer and currency.

    A rail's credit document credits one invoice, so a note correcting several periods is
    refused (``credits_several_invoices``).
    """
    if not is_credit(note):
        raise ValueError(f"{note.number} is not a credit note")
    corrected = sorted(
        {
            line.service_start
            for line in note.lines
            if line.kind is LineKind.ADJUSTMENT and line.service_start is not None
        }
    )
    if len(corrected) > 1:
        numbers = [invoice_identity(note.customer, s, note.currency)[1] for s in corrected]
        raise PermanentRailError(
            f"{note.number} corrects {len(corrected)} invoices ({', '.join(numbers)}); a "
            "rail's credit document credits one",
            code="credits_several_invoices",
        )
    start = corrected[0] if corrected else note.period_start
    return CreditedInvoice(*invoice_identity(note.customer, start, note.currency))


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
