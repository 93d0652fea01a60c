"""What rails share for credit notes: the invoice credited, the amount given back, the limit."""

from __future__ import annotations

from decimal import Decimal

import pytest

from connectors.rails.base import PermanentRailError
from connectors.rails.credit import check_within, credit_amount, credited_invoice
from streams.domain.invoice import DocumentKind
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
