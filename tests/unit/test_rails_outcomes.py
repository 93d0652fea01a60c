"""Status and dead-letter records: built from outcomes, and round-tripped through their Avro codecs."""

from __future__ import annotations

from datetime import UTC, datetime

import fastavro

from connectors.rails.base import Delivery
from connectors.rails.outcomes import (
    DeadLetterReason,
    DeliveryStatus,
    dead_letter_record,
    status_record,
)
from streams.wire.codec import load_schema
from streams.wire.invoices import encode_invoice
from streams.wire.records import INVOICE_DEAD_LETTERS, INVOICE_STATUS
from tests.fixtures.rails.invoices import sample_invoice
from tests.unit.avro_vectors import single_object

AT = datetime(2025, 2, 1, 12, 30, 15, 123456, tzinfo=UTC)


def test_delivered_status_round_trips_with_the_rails_ids() -> None:
    invoice = sample_invoice(1, "stripe")
    delivery = Delivery("stripe", invoice.id, {"invoice": "in_1", "customer": "cus_1"}, "open")
    record = status_record(invoice, "stripe", DeliveryStatus.DELIVERED, 3, AT, delivery=delivery)
    decoded = INVOICE_STATUS.decode(INVOICE_STATUS.encode(record))
    assert decoded == record
    assert decoded["references"] == {"invoice": "in_1", "customer": "cus_1"}
    assert decoded["rail_status"] == "open" and decoded["error_code"] is None


def test_retrying_status_carries_the_error_and_when_to_expect_the_next_try() -> None:
    invoice = sample_invoice(1, "webhook")
    record = status_record(
        invoice,
        "webhook",
        DeliveryStatus.RETRYING,
        1,
        AT,
        error_code="http_503",
        error_message="busy",
        retry_at=AT,
    )
    assert INVOICE_STATUS.decode(INVOICE_STATUS.encode(record)) == record
    assert record["references"] == {} and record["status"] == "retrying"


def test_dead_letter_keeps_the_original_bytes() -> None:
    invoice = sample_invoice(2, "stripe")
    original = encode_invoice(invoice)
    record = dead_letter_record(
        "stripe",
        DeadLetterReason.REJECTED,
        invoice=invoice,
        error_code="parameter_invalid",
        error_message="Stripe 400: bad tax id",
        attempts=1,
        topic="invoices.stripe",
        partition=0,
        offset=41,
        original=original,
        failed_at=AT,
    )
    decoded = INVOICE_DEAD_LETTERS.decode(INVOICE_DEAD_LETTERS.encode(record))
    assert decoded == record and decoded["original"] == original


def test_an_undecodable_record_is_dead_lettered_without_invoice_fields() -> None:
    record = dead_letter_record(
        "stripe",
        DeadLetterReason.UNDECODABLE,
        invoice=None,
        error_code="undecodable",
        error_message="ValueError",
        attempts=0,
        topic="invoices.stripe",
        partition=0,
        offset=0,
        original=b"\x00garbage",
        failed_at=AT,
    )
    decoded = INVOICE_DEAD_LETTERS.decode(INVOICE_DEAD_LETTERS.encode(record))
    assert decoded["invoice_id"] is None and decoded["original"] == b"\x00garbage"


def test_bytes_any_avro_library_writes_decode() -> None:
    schema = load_schema("invoice_status.v1.avsc")
    assert schema["namespace"] == "dev.railyard.billing"
    record = status_record(
        sample_invoice(3, "outbox"),
        "outbox",
        DeliveryStatus.FAILED,
        8,
        AT,
        error_code="EIO",
        error_message="disk",
    )
    assert INVOICE_STATUS.decode(single_object(schema, record)) == record
    fastavro.parse_schema(load_schema("invoice_dead_letter.v1.avsc"))
