"""The rails' notifications mapped to invoice statuses, and the ledger that finds the invoice."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.rails.notifications.ledger import Ledger, notification_record
from connectors.rails.notifications.mapping import (
    MAPPERS,
    InvoiceRef,
    NotificationError,
    PaymentStatus,
    RefKind,
    adyen_notifications,
    paypal_notifications,
    stripe_notifications,
)
from streams.wire.records import INVOICE_STATUS

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def stripe_event(kind: str, obj: dict[str, Any], event_id: str = "evt_1") -> dict[str, Any]:
    return {"id": event_id, "type": kind, "data": {"object": obj}}


def delivered(rail: str, invoice_id: str, number: str, **refs: str) -> dict[str, Any]:
    return {
        "invoice_id": invoice_id,
        "number": number,
        "customer": "acme",
        "rail": rail,
        "status": "delivered",
        "references": refs,
    }


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("invoice.paid", PaymentStatus.PAID),
        ("invoice.payment_failed", PaymentStatus.PAYMENT_FAILED),
        ("invoice.voided", PaymentStatus.VOIDED),
    ],
)
def test_stripe_invoice_events_name_the_railyard_invoice(kind: str, status: PaymentStatus) -> None:
    obj = {"id": "in_9", "object": "invoice", "metadata": {"railyard_invoice": "inv-1"}}
    [note] = stripe_notifications(stripe_event(kind, obj))
    assert (note.rail, note.event_id, note.event_type, note.status) == (
        "stripe",
        "evt_1",
        kind,
        status,
    )
    assert note.refs == (
        InvoiceRef(RefKind.INVOICE_ID, "inv-1"),
        InvoiceRef(RefKind.RAIL_REFERENCE, "in_9"),
    )


def test_stripe_refunds_and_disputes_name_the_stripe_invoice_or_charge() -> None:
    [refund] = stripe_notifications(
        stripe_event("charge.refunded", {"id": "ch_1", "invoice": "in_9"})
    )
    assert refund.status is PaymentStatus.REFUNDED
    assert refund.refs == (InvoiceRef(RefKind.RAIL_REFERENCE, "in_9"),)
    note = {"id": "cn_1", "invoice": "in_9", "metadata": {"railyard_invoice": "inv-1"}}
    [credit] = stripe_notifications(stripe_event("credit_note.created", note))
    assert credit.status is PaymentStatus.REFUNDED
    assert credit.refs[0] == InvoiceRef(RefKind.INVOICE_ID, "inv-1")
    [dispute] = stripe_notifications(stripe_event("charge.dispute.created", {"charge": "ch_1"}))
    assert dispute.status is PaymentStatus.DISPUTED
    assert dispute.refs == (InvoiceRef(RefKind.RAIL_REFERENCE, "ch_1"),)


def test_stripe_events_without_a_status_are_ignored_and_malformed_ones_refused() -> None:
    assert stripe_notifications(stripe_event("customer.created", {"id": "cus_1"})) == []
    with pytest.raises(NotificationError):
        stripe_notifications({"type": "invoice.paid"})


def adyen_body(*items: dict[str, Any]) -> dict[str, Any]:
    return {"live": "false", "notificationItems": [{"NotificationRequestItem": i} for i in items]}


def test_adyen_authorisation_success_and_failure_by_merchant_reference() -> None:
    ok = {
        "eventCode": "AUTHORISATION",
        "success": "true",
        "pspReference": "P1",
        "merchantReference": "INV-7",
    }
    ko = {**ok, "success": "false", "pspReference": "P2"}
    paid, failed = adyen_notifications(adyen_body(ok, ko))
    assert (paid.status, paid.event_id) == (PaymentStatus.PAID, "P1:AUTHORISATION:true")
    assert paid.refs[0] == InvoiceRef(RefKind.NUMBER, "INV-7")
    assert (failed.status, failed.event_id) == (
        PaymentStatus.PAYMENT_FAILED,
        "P2:AUTHORISATION:false",
    )


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("REFUND", PaymentStatus.REFUNDED),
        ("CHARGEBACK", PaymentStatus.DISPUTED),
        ("CANCELLATION", PaymentStatus.VOIDED),
    ],
)
def test_adyen_modifications_name_the_original_payment(code: str, status: PaymentStatus) -> None:
    item = {
        "eventCode": code,
        "success": "true",
        "pspReference": "M1",
        "originalReference": "P1",
        "merchantReference": "CN-1",
    }
    [note] = adyen_notifications(adyen_body(item))
    assert note.status is status
    assert note.refs == (InvoiceRef(RefKind.RAIL_REFERENCE, "P1"),)


def test_adyen_failed_refund_changes_nothing_and_bad_bodies_are_refused() -> None:
    item = {
        "eventCode": "REFUND",
        "success": "false",
        "pspReference": "M1",
        "originalReference": "P1",
    }
    assert adyen_notifications(adyen_body(item)) == []
    with pytest.raises(NotificationError):
        adyen_notifications({"live": "false"})
    with pytest.raises(NotificationError):
        adyen_notifications(adyen_body({"eventCode": "AUTHORISATION"}))


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("INVOICING.INVOICE.PAID", PaymentStatus.PAID),
        ("INVOICING.INVOICE.REFUNDED", PaymentStatus.REFUNDED),
        ("INVOICING.INVOICE.CANCELLED", PaymentStatus.VOIDED),
    ],
)
def test_paypal_invoicing_events_name_the_invoice_number(kind: str, status: PaymentStatus) -> None:
    event = {
        "id": "WH-1",
        "event_type": kind,
        "resource": {"invoice": {"id": "INV2-AAAA", "detail": {"invoice_number": "INV-7"}}},
    }
    [note] = paypal_notifications(event)
    assert (note.event_id, note.status) == ("WH-1", status)
    assert note.refs == (
        InvoiceRef(RefKind.NUMBER, "INV-7"),
        InvoiceRef(RefKind.RAIL_REFERENCE, "INV2-AAAA"),
    )


def test_paypal_capture_denied_and_dispute() -> None:
    denied = {
        "id": "WH-2",
        "event_type": "PAYMENT.CAPTURE.DENIED",
        "resource": {"invoice_id": "INV-7"},
    }
    [note] = paypal_notifications(denied)
    assert (note.status, note.refs) == (
        PaymentStatus.PAYMENT_FAILED,
        (InvoiceRef(RefKind.NUMBER, "INV-7"),),
    )
    dispute = {
        "id": "WH-3",
        "event_type": "CUSTOMER.DISPUTE.CREATED",
        "resource": {"disputed_transactions": [{"invoice_number": "INV-7"}]},
    }
    assert paypal_notifications(dispute)[0].status is PaymentStatus.DISPUTED
    with pytest.raises(NotificationError):
        paypal_notifications({"id": "WH-4", "event_type": "INVOICING.INVOICE.PAID"})


def test_every_mapped_rail_has_a_mapper_and_every_status_a_value() -> None:
    assert set(MAPPERS) == {"stripe", "adyen", "paypal"}
    assert {s.value for s in PaymentStatus} == {
        "issued",
        "delivered",
        "paid",
        "partially_paid",
        "overdue",
        "payment_failed",
        "refunded",
        "disputed",
        "voided",
    }


def test_ledger_resolves_by_id_number_or_rail_reference_of_its_own_rail_only() -> None:
    ledger = Ledger("stripe").add_all(
        [
            delivered("stripe", "inv-1", "INV-1", invoice="in_9", customer="cus_1"),
            delivered("adyen", "inv-2", "INV-2", pspReference="P1"),
        ]
    )
    assert ledger.resolve([InvoiceRef(RefKind.RAIL_REFERENCE, "in_9")]).invoice_id == "inv-1"  # type: ignore[union-attr]
    assert ledger.resolve([InvoiceRef(RefKind.NUMBER, "INV-1")]).invoice_id == "inv-1"  # type: ignore[union-attr]
    assert ledger.resolve([InvoiceRef(RefKind.RAIL_REFERENCE, "cus_1")]) is None
    assert ledger.resolve([InvoiceRef(RefKind.RAIL_REFERENCE, "P1")]) is None


def test_a_notification_step_round_trips_and_marks_its_event_seen() -> None:
    ledger = Ledger("stripe").add_all([delivered("stripe", "inv-1", "INV-1", invoice="in_9")])
    obj = {"id": "in_9", "metadata": {"railyard_invoice": "inv-1"}}
    [note] = stripe_notifications(stripe_event("invoice.paid", obj, "evt_42"))
    known = ledger.resolve(note.refs)
    assert known is not None
    record = notification_record(note, known, AT)
    decoded = INVOICE_STATUS.decode(INVOICE_STATUS.encode(record))
    assert (decoded["invoice_id"], decoded["status"], decoded["rail_status"]) == (
        "inv-1",
        "paid",
        "invoice.paid",
    )
    assert decoded["references"]["event_id"] == "evt_42"
    assert "evt_42" not in ledger.seen
    ledger.add(decoded)
    assert "evt_42" in ledger.seen
