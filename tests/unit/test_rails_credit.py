"""What rails share for credit notes: the invoice credited, the amount given back, the limit."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from connectors.rails.base import PermanentRailError
from connectors.rails.credit import (
    CreditedInvoice,
    check_within,
    credit_amount,
    credited_invoice,
)
from streams.domain.invoice import DocumentKind, Invoice, InvoiceLine, LineKind, invoice_identity
from tests.fixtures.rails.invoices import sample_invoice


def test_a_credit_note_credits_the_invoice_of_its_customer_period_and_currency() -> None:
    invoice = sample_invoice(3, "netsuite", "EUR")
    note = sample_invoice(3, "netsuite", "EUR", kind=DocumentKind.CREDIT_NOTE)
    credited = credited_invoice(note)
    assert (credited.id, credited.number, credited.idempotency_key) == (
        invoice.id,
        invoice.number,
        invoice.idempotency_key,
    )
    assert credited.idempotency_key != note.idempotency_key


def test_an_invoice_credits_nothing() -> None:
    with pytest.raises(ValueError, match="not a credit note"):
        credited_invoice(sample_invoice(3, "netsuite"))


def test_the_amount_given_back_is_positive() -> None:
    note = sample_invoice(4, "netsuite", "JPY", kind=DocumentKind.CREDIT_NOTE)
    assert note.total < 0
    assert credit_amount(note) == -note.total


def test_credits_may_reach_the_invoice_total_but_not_pass_it() -> None:
    note = sample_invoice(5, "netsuite", kind=DocumentKind.CREDIT_NOTE)
    check_within(note, Decimal("40.00"), Decimal("60.00"), Decimal("100.00"))
    with pytest.raises(PermanentRailError, match="would credit more than") as refused:
        check_within(note, Decimal("40.01"), Decimal("60.00"), Decimal("100.00"))
    assert refused.value.code == "credit_exceeds_invoice"
    assert credited_invoice(note).number in str(refused.value)


def correction_note(n: int, later: int, *corrected: Invoice) -> Invoice:
    """A credit note as the billing book issues it: dated ``later`` periods after invoice
    ``n`` (the customer owes nothing then), one adjustment line per corrected invoice."""
    base = sample_invoice(
        n + later, "netsuite", "EUR", kind=DocumentKind.CREDIT_NOTE, customer=corrected[0].customer
    )
    lines = tuple(
        InvoiceLine(
            LineKind.ADJUSTMENT,
            f"Correction to {inv.number}",
            Decimal("-1.50"),
            service_start=inv.period_start,
            service_end=inv.period_end,
        )
        for inv in corrected
    )
    total = sum((line.amount for line in lines), Decimal(0))
    return dataclasses.replace(
        base,
        lines=lines,
        credits=(),
        subtotal=total,
        discount_total=Decimal(0),
        credits_total=Decimal(0),
        total=total,
    )


def test_a_note_dated_after_the_invoice_it_corrects_credits_that_invoice() -> None:
    invoice = sample_invoice(3, "netsuite", "EUR")
    first, second = correction_note(3, 1, invoice), correction_note(3, 2, invoice)
    assert first.period_start > invoice.period_start  # its own period has no invoice
    for note in (first, second):
        assert credited_invoice(note) == CreditedInvoice(
            invoice.id, invoice.number, invoice.idempotency_key
        )
    # two credit notes for one invoice: each its own document at the rail
    assert first.idempotency_key != second.idempotency_key and first.number != second.number


def test_a_note_correcting_two_invoices_is_refused_naming_both() -> None:
    one = sample_invoice(3, "netsuite", "EUR")
    two = sample_invoice(4, "netsuite", "EUR", customer=one.customer)
    note = correction_note(3, 2, one, two)
    with pytest.raises(PermanentRailError, match="corrects 2 invoices") as refused:
        credited_invoice(note)
    assert refused.value.code == "credits_several_invoices"
    for start in (one.period_start, two.period_start):
        assert invoice_identity(one.customer, start, "EUR")[1] in str(refused.value)
