"""What a redrive re-publishes: the pure plan over dead letters and latest statuses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from connectors.rails.outcomes import DeadLetterReason, dead_letter_record
from connectors.rails.redrive import plan
from streams.domain.invoice import Invoice
from streams.wire.invoices import encode_invoice
from tests.fixtures.rails.invoices import sample_invoice

AT = datetime(2025, 2, 1, tzinfo=UTC)


def letter(
    invoice: Invoice | None, rail: str, reason: DeadLetterReason, original: bytes | None = None
) -> dict[str, Any]:
    return dead_letter_record(
        rail,
        reason,
        invoice=invoice,
        error_code="http_422",
        error_message="refused",
        attempts=1,
        topic=f"invoices.{rail}",
        partition=0,
        offset=0,
        original=encode_invoice(invoice) if original is None and invoice else original or b"",
        failed_at=AT,
    )


def test_every_invoice_once_with_its_original_bytes_and_customer_key() -> None:
    a, b = sample_invoice(1, "webhook"), sample_invoice(2, "stripe")
    letters = [
        (0, letter(a, "webhook", DeadLetterReason.REJECTED)),
        (1, letter(b, "stripe", DeadLetterReason.EXHAUSTED)),
        (2, letter(a, "webhook", DeadLetterReason.EXHAUSTED)),
    ]
    planned = plan(letters, {})
    assert [(r.invoice_id, r.offset, r.reason) for r in planned] == [
        (b.id, 1, "exhausted"),
        (a.id, 2, "exhausted"),
    ]
    assert all(r.redriven for r in planned)
    assert planned[1].original == encode_invoice(a) and planned[1].key == a.customer.encode()


def test_filters_by_rail_and_by_invoice_id_or_number() -> None:
    a, b = sample_invoice(1, "webhook"), sample_invoice(2, "stripe")
    letters = [
        (0, letter(a, "webhook", DeadLetterReason.REJECTED)),
        (1, letter(b, "stripe", DeadLetterReason.REJECTED)),
    ]
    assert [r.invoice_id for r in plan(letters, {}, rail="stripe")] == [b.id]
    assert [r.invoice_id for r in plan(letters, {}, invoice=a.number)] == [a.id]
    assert [r.invoice_id for r in plan(letters, {}, invoice=b.id)] == [b.id]
    assert plan(letters, {}, rail="adyen") == []


def test_a_misrouted_invoice_goes_to_the_rail_it_names() -> None:
    a = sample_invoice(1, "webhook")
    (r,) = plan([(0, letter(a, "stripe", DeadLetterReason.MISROUTED))], {}, rail="stripe")
    assert r.rail == "webhook" and r.redriven


def test_delivered_since_and_undecodable_are_skipped() -> None:
    a = sample_invoice(1, "webhook")
    letters = [
        (0, letter(None, "webhook", DeadLetterReason.UNDECODABLE, original=b"not avro")),
        (1, letter(a, "webhook", DeadLetterReason.REJECTED)),
    ]
    planned = plan(letters, {a.id: "delivered"})
    assert [r.action for r in planned] == ["skipped: not an invoice", "skipped: delivered since"]
    assert not any(r.redriven for r in planned)
    assert [r.redriven for r in plan(letters, {a.id: "failed"})] == [False, True]
