"""What a rail's notification means for a Railyard invoice (pure: no I/O, no clock).

Each rail names the invoice its own way, as its provider module created the document:

* Stripe: the invoice object carries ``metadata.railyard_invoice`` (the Railyard
  invoice id); a charge or credit note names the Stripe invoice (``invoice``), which
  the ``delivered`` status step holds as ``references["invoice"]``; a dispute names
  only its charge (``charge``), matched the same way when a step holds it.
* Adyen: ``merchantReference`` is the invoice number for a payment
  (``AUTHORISATION``); a modification (``REFUND``, ``CANCELLATION``,
  ``CHARGEBACK``) names the payment by ``originalReference``, the ``pspReference``
  the ``delivered`` step holds.
* PayPal: an invoicing event's resource is the invoice (``id`` = PayPal's invoice id,
  ``detail.invoice_number`` = the Railyard number); a capture names it by
  ``invoice_id``, a dispute by ``disputed_transactions[].invoice_number``.

The event id each rail gives a notification is what makes a replay harmless: Stripe's
``evt_`` id, PayPal's ``WH-`` id, and for Adyen (which has none) its documented
de-duplication key, ``pspReference`` + ``eventCode`` + ``success``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class PaymentStatus(StrEnum):
    """Where an invoice stands at its rail after delivery (``invoices.status`` ``status``)."""

    ISSUED = "issued"
    DELIVERED = "delivered"
    PAID = "paid"
    PARTIALLY_PAID = "partially_paid"
    """Part of it paid (a polled rail reports how much: ``references["amount_paid"]``)."""
    OVERDUE = "overdue"
    """Not (fully) paid by its due date; from a polled rail."""
    PAYMENT_FAILED = "payment_failed"
    REFUNDED = "refunded"
    DISPUTED = "disputed"
    VOIDED = "voided"


class RefKind(StrEnum):
    """How a notification names its invoice."""

    INVOICE_ID = "invoice_id"
    """Railyard's invoice id."""
    NUMBER = "number"
    """Railyard's invoice number."""
    RAIL_REFERENCE = "rail_reference"
    """One of the rail's ids the ``delivered`` step holds in ``references``."""


@dataclass(frozen=True)
class InvoiceRef:
    kind: RefKind
    value: str


@dataclass(frozen=True)
class Notification:
    """One notification that changes an invoice's status."""

    rail: str
    event_id: str
    event_type: str
    """The rail's own word for it (``invoice.paid``, ``AUTHORISATION``, ...)."""
    status: PaymentStatus
    refs: tuple[InvoiceRef, ...]
    """Ways to find the invoice, most specific first."""


class NotificationError(ValueError):
    """The body is not a notification this rail sends (HTTP 400)."""


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _refs(*pairs: tuple[RefKind, Any]) -> tuple[InvoiceRef, ...]:
    return tuple(InvoiceRef(kind, v) for kind, v in pairs if isinstance(v, str) and v)


# --- Stripe ----------------------------------------------------------------------------------

STRIPE_EVENTS: Mapping[str, PaymentStatus] = {
    "invoice.finalized": PaymentStatus.ISSUED,
    "invoice.sent": PaymentStatus.DELIVERED,
    "invoice.paid": PaymentStatus.PAID,
    "invoice.payment_failed": PaymentStatus.PAYMENT_FAILED,
    "invoice.voided": PaymentStatus.VOIDED,
    "charge.refunded": PaymentStatus.REFUNDED,
    "credit_note.created": PaymentStatus.REFUNDED,
    "charge.dispute.created": PaymentStatus.DISPUTED,
}


def stripe_notifications(event: Mapping[str, Any]) -> list[Notification]:
    """A Stripe event (as ``stripe.Webhook.construct_event`` returns it, or its JSON)."""
    event_id, kind = _str(event.get("id")), _str(event.get("type"))
    obj = (event.get("data") or {}).get("object")
    if not event_id or not kind or not isinstance(obj, Mapping):
        raise NotificationError("not a Stripe event: id, type and data.object are required")
    status = STRIPE_EVENTS.get(kind)
    if status is None:
        return []
    metadata = obj.get("metadata") or {}
    if kind.startswith("invoice."):
        refs = _refs(
            (RefKind.INVOICE_ID, metadata.get("railyard_invoice")),
            (RefKind.RAIL_REFERENCE, obj.get("id")),
        )
    elif kind == "charge.dispute.created":
        refs = _refs((RefKind.RAIL_REFERENCE, obj.get("charge")))
    else:  # a charge or a credit note: both name the Stripe invoice
        refs = _refs(
            (RefKind.INVOICE_ID, metadata.get("railyard_invoice")),
            (RefKind.RAIL_REFERENCE, obj.get("invoice")),
        )
    return [Notification("stripe", event_id, kind, status, refs)]


# --- Adyen -----------------------------------------------------------------------------------


def _adyen_status(code: str, success: bool) -> PaymentStatus | None:
    if code == "AUTHORISATION":
        return PaymentStatus.PAID if success else PaymentStatus.PAYMENT_FAILED
    if not success:
        return None  # a refund or cancellation Adyen could not do changes nothing
    return {
        "REFUND": PaymentStatus.REFUNDED,
        "CHARGEBACK": PaymentStatus.DISPUTED,
        "CANCELLATION": PaymentStatus.VOIDED,
        "CANCEL_OR_REFUND": PaymentStatus.REFUNDED,
    }.get(code)


def adyen_items(body: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """The ``NotificationRequestItem`` of each entry of a standard notification."""
    entries = body.get("notificationItems")
    if not isinstance(entries, list) or not entries:
        raise NotificationError("not an Adyen notification: notificationItems is required")
    for entry in entries:
        item = entry.get("NotificationRequestItem") if isinstance(entry, Mapping) else None
        if not isinstance(item, Mapping):
            raise NotificationError("an Adyen notification item has no NotificationRequestItem")
        yield item


def adyen_notification(item: Mapping[str, Any]) -> Notification | None:
    """One ``NotificationRequestItem`` (its HMAC already verified)."""
    code, psp = _str(item.get("eventCode")), _str(item.get("pspReference"))
    if not code or not psp:
        raise NotificationError("an Adyen item needs eventCode and pspReference")
    success = _str(item.get("success")).lower() == "true"
    status = _adyen_status(code, success)
    if status is None:
        return None
    if code == "AUTHORISATION":
        refs = _refs((RefKind.NUMBER, item.get("merchantReference")), (RefKind.RAIL_REFERENCE, psp))
    else:
        refs = _refs((RefKind.RAIL_REFERENCE, item.get("originalReference")))
    event_id = f"{psp}:{code}:{'true' if success else 'false'}"
    return Notification("adyen", event_id, code, status, refs)


def adyen_notifications(body: Mapping[str, Any]) -> list[Notification]:
    return [n for item in adyen_items(body) if (n := adyen_notification(item)) is not None]


# --- PayPal ----------------------------------------------------------------------------------

PAYPAL_EVENTS: Mapping[str, PaymentStatus] = {
    "INVOICING.INVOICE.PAID": PaymentStatus.PAID,
    "INVOICING.INVOICE.REFUNDED": PaymentStatus.REFUNDED,
    "INVOICING.INVOICE.CANCELLED": PaymentStatus.VOIDED,
    "PAYMENT.CAPTURE.COMPLETED": PaymentStatus.PAID,
    "PAYMENT.CAPTURE.DENIED": PaymentStatus.PAYMENT_FAILED,
    "PAYMENT.CAPTURE.DECLINED": PaymentStatus.PAYMENT_FAILED,
    "PAYMENT.CAPTURE.REFUNDED": PaymentStatus.REFUNDED,
    "CUSTOMER.DISPUTE.CREATED": PaymentStatus.DISPUTED,
}


def paypal_notifications(event: Mapping[str, Any]) -> list[Notification]:
    """A PayPal webhook event (its signature already verified)."""
    event_id, kind = _str(event.get("id")), _str(event.get("event_type"))
    resource = event.get("resource")
    if not event_id or not kind or not isinstance(resource, Mapping):
        raise NotificationError("not a PayPal event: id, event_type and resource are required")
    status = PAYPAL_EVENTS.get(kind)
    if status is None:
        return []
    if kind.startswith("INVOICING."):
        invoice = resource.get("invoice", resource)  # v2 wraps the invoice; v1 did not
        detail = invoice.get("detail") or {}
        refs = _refs(
            (RefKind.NUMBER, detail.get("invoice_number")),
            (RefKind.RAIL_REFERENCE, invoice.get("id")),
        )
    elif kind.startswith("CUSTOMER.DISPUTE."):
        txs = resource.get("disputed_transactions") or []
        refs = _refs(*((RefKind.NUMBER, t.get("invoice_number")) for t in txs))
    else:  # a capture: invoice_id is the invoice number the order carried
        refs = _refs(
            (RefKind.NUMBER, resource.get("invoice_id")),
            (RefKind.INVOICE_ID, resource.get("custom_id")),
        )
    return [Notification("paypal", event_id, kind, status, refs)]


MAPPERS: Mapping[str, Callable[[Mapping[str, Any]], list[Notification]]] = {
    "stripe": stripe_notifications,
    "adyen": adyen_notifications,
    "paypal": paypal_notifications,
}
"""The rails whose notifications Railyard understands; ``railyard rails listen`` serves these."""
