"""Invoices survive the Avro round trip exactly, in every currency's minor unit."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from streams.domain.invoice import (
    CreditApplication,
    DocumentKind,
    Invoice,
    InvoiceLine,
    LineKind,
    TierSlice,
    invoice_identity,
)
from streams.wire.invoices import decode_invoice, encode_invoice

START = datetime(2026, 11, 1, tzinfo=UTC)
END = datetime(2026, 12, 1, tzinfo=UTC)


def invoice(currency: str, usage: str, fee: str, credit: str) -> Invoice:
    inv_id, number, key = invoice_identity("acme", START, currency)
    lines = (
        InvoiceLine(
            LineKind.USAGE,
            "Tokens (gpt-x, input)",
            Decimal(usage),
            price_key="tokens",
            meter="llm_tokens",
            dimensions=(("model", "gpt-x"), ("direction", "input")),
            quantity=Decimal("1234567.5"),
            unit_amount=Decimal("0.000002"),
            tiers=(
                TierSlice(Decimal(1000), Decimal(1000), Decimal(0), Decimal(0), Decimal(0)),
                TierSlice(
                    None, Decimal("1233567.5"), Decimal("0.000002"), Decimal(0), Decimal("2.467135")
                ),
            ),
        ),
        InvoiceLine(
            LineKind.RECURRING,
            "Pro plan",
            Decimal(fee),
            price_key="base",
            service_start=START,
            service_end=END,
        ),
    )
    subtotal = Decimal(usage) + Decimal(fee)
    return Invoice(
        id=inv_id,
        number=number,
        kind=DocumentKind.INVOICE,
        customer="acme",
        customer_name="Acme",
        rail="stripe",
        account="cus_123",
        currency=currency,
        period_start=START,
        period_end=END,
        lines=lines,
        credits=(CreditApplication("promo", Decimal(credit)),),
        subtotal=subtotal,
        discount_total=Decimal(0),
        commitment_true_up=Decimal(0),
        credits_total=Decimal(credit),
        total=subtotal - Decimal(credit),
        idempotency_key=key,
        catalog_version="0123456789abcdef",
        issued_at=END,
    )


@pytest.mark.parametrize(
    ("currency", "usage", "fee", "credit"),
    [
        ("USD", "2.47", "49.00", "10.00"),
        ("JPY", "247", "4900", "1000"),
        ("KWD", "0.742", "15.125", "0.500"),
        ("EUR", "0.00", "0.01", "0.00"),
    ],
)
def test_round_trip_is_exact(currency: str, usage: str, fee: str, credit: str) -> None:
    original = invoice(currency, usage, fee, credit)
    decoded = decode_invoice(encode_invoice(original))
    assert decoded == original
    # and prints in the currency's minor unit, not at the schema's scale
    assert str(decoded.total) == str(original.total)


def test_identity_is_stable_and_distinct() -> None:
    assert invoice_identity("acme", START, "USD") == invoice_identity("acme", START, "USD")
    ids = {
        invoice_identity("acme", START, "USD"),
        invoice_identity("acme", END, "USD"),
        invoice_identity("acme", START, "EUR"),
        invoice_identity("acme", START, "USD", DocumentKind.CREDIT_NOTE),
    }
    assert len({i[0] for i in ids}) == 4 and len({i[2] for i in ids}) == 4


def test_totals_must_add_up() -> None:
    good = invoice("USD", "2.47", "49.00", "10.00")
    with pytest.raises(ValueError, match="subtotal"):
        Invoice(**{**good.__dict__, "subtotal": Decimal("51.48")})
