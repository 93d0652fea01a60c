"""The stand-ins' payment notifications: what Stripe, Adyen and PayPal send after a delivery.

:func:`notification` builds the notification a rail sends when the invoice of a
``delivered`` status step is paid, fails to be paid, is refunded, disputed or voided,
signed the way that rail signs: Stripe's ``Stripe-Signature`` over ``t.body`` with
the endpoint secret; Adyen's ``hmacSignature`` over the item's fields (Adyen's
documented signing string) with the hex HMAC key; PayPal's transmission headers,
which only the PayPal stand-in can verify. Signatures are computed here from each
rail's documentation, not through the SDK helpers the receiver verifies with, so the
receiver's tests check one against the other. :func:`send` posts it.

The stand-in's state follows: a paid Stripe or PayPal invoice is recorded as paid,
so a later credit note refunds it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from connectors.rails.sandbox.peer_stripe import StripePeer, StripeRules
from connectors.rails.sandbox.servers.adyen import MERCHANT_ACCOUNT
from connectors.rails.sandbox.servers.paypal import PayPalServer
from connectors.rails.sandbox.servers.peer import ServerPeer

STATUSES = ("paid", "payment_failed", "refunded", "disputed", "voided")


@dataclass(frozen=True)
class Signed:
    """A notification as the rail posts it."""

    event_id: str
    body: bytes
    headers: dict[str, str]


def stripe_signature(body: bytes, secret: str, timestamp: int) -> str:
    """``Stripe-Signature`` as Stripe documents it: ``t=…,v1=HMAC-SHA256(secret, "t.body")``."""
    signed = f"{timestamp}.".encode() + body
    v1 = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={v1}"


STRIPE_EVENTS = {
    "paid": "invoice.paid",
    "payment_failed": "invoice.payment_failed",
    "refunded": "charge.refunded",
    "disputed": "charge.dispute.created",
    "voided": "invoice.voided",
}


def _stripe(peer: Any, status: str, step: Mapping[str, Any], at: int) -> Signed:
    rules = peer.proxy.rules
    assert isinstance(peer, StripePeer) and isinstance(rules, StripeRules)
    stripe_id = step["references"]["invoice"]
    held = rules.invoices.get(stripe_id, {})
    invoice = {
        "id": stripe_id,
        "object": "invoice",
        "customer": held.get("customer", step["references"].get("customer")),
        "metadata": held.get("metadata", {"railyard_invoice": step["invoice_id"]}),
        "total": held.get("total", 0),
        "status": {"paid": "paid", "voided": "void"}.get(status, "open"),
    }
    charge = {"id": f"ch_{uuid.uuid4().hex[:24]}", "object": "charge", "invoice": stripe_id}
    kind = STRIPE_EVENTS[status]
    obj: dict[str, Any]
    if kind.startswith("invoice."):
        obj = invoice
    elif kind == "charge.refunded":
        obj = {**charge, "refunded": True, "amount_refunded": invoice["total"]}
    else:
        obj = {"id": f"dp_{uuid.uuid4().hex[:24]}", "object": "dispute", "charge": charge["id"]}
    if status in ("paid", "voided") and stripe_id in rules.invoices:
        rules.invoices[stripe_id]["status"] = invoice["status"]
    event_id = f"evt_{uuid.uuid4().hex[:24]}"
    event = {
        "id": event_id,
        "object": "event",
        "api_version": "2024-06-20",
        "created": at,
        "livemode": False,
        "type": kind,
        "data": {"object": obj},
    }
    body = json.dumps(event).encode()
    secret = peer.config().require("webhook_secret")
    return Signed(event_id, body, {"Stripe-Signature": stripe_signature(body, secret, at)})


def adyen_signature(item: Mapping[str, Any], hmac_key: str) -> str:
    """Adyen's HMAC of a standard notification item (its documented signing string)."""
    amount = item.get("amount") or {}
    fields = [
        item.get("pspReference", ""),
        item.get("originalReference", ""),
        item.get("merchantAccountCode", ""),
        item.get("merchantReference", ""),
        str(amount.get("value", "")),
        amount.get("currency", ""),
        item.get("eventCode", ""),
        item.get("success", ""),
    ]
    digest = hmac.new(binascii.a2b_hex(hmac_key), ":".join(fields).encode(), hashlib.sha256)
    return base64.b64encode(digest.digest()).decode()


ADYEN_EVENTS = {
    "paid": ("AUTHORISATION", "true"),
    "payment_failed": ("AUTHORISATION", "false"),
    "refunded": ("REFUND", "true"),
    "disputed": ("CHARGEBACK", "true"),
    "voided": ("CANCELLATION", "true"),
}


def _adyen(peer: Any, status: str, step: Mapping[str, Any], at: int) -> Signed:
    assert isinstance(peer, ServerPeer)
    payment = step["references"]["pspReference"]
    code, success = ADYEN_EVENTS[status]
    item: dict[str, Any] = {
        "eventCode": code,
        "success": success,
        "merchantAccountCode": MERCHANT_ACCOUNT,
        "merchantReference": step["number"],
        "amount": {"value": 0, "currency": "EUR"},
        "eventDate": datetime.fromtimestamp(at, UTC).isoformat(),
    }
    if code == "AUTHORISATION":
        item["pspReference"] = payment
    else:  # a modification has its own reference and names the payment
        item["pspReference"] = f"{uuid.uuid4().int % 10**16:016d}"
        item["originalReference"] = payment
    item["additionalData"] = {
        "hmacSignature": adyen_signature(item, peer.config().require("hmac_key"))
    }
    body = json.dumps({"live": "false", "notificationItems": [{"NotificationRequestItem": item}]})
    return Signed(f"{item['pspReference']}:{code}:{success}", body.encode(), {})


PAYPAL_EVENTS = {
    "paid": "INVOICING.INVOICE.PAID",
    "payment_failed": "PAYMENT.CAPTURE.DENIED",
    "refunded": "INVOICING.INVOICE.REFUNDED",
    "disputed": "CUSTOMER.DISPUTE.CREATED",
    "voided": "INVOICING.INVOICE.CANCELLED",
}


def _paypal(peer: Any, status: str, step: Mapping[str, Any], at: int) -> Signed:
    assert isinstance(peer, ServerPeer) and isinstance(peer.server, PayPalServer)
    server: PayPalServer = peer.server
    invoice_id = step["references"]["invoice"]
    if status == "paid":
        server.pay(invoice_id)
    kind = PAYPAL_EVENTS[status]
    invoice = server.invoices.get(invoice_id) or {
        "id": invoice_id,
        "detail": {"invoice_number": step["number"]},
    }
    resource: dict[str, Any]
    if kind.startswith("INVOICING."):
        resource = {"invoice": invoice}
    elif kind.startswith("CUSTOMER.DISPUTE."):
        resource = {"disputed_transactions": [{"invoice_number": step["number"]}]}
    else:
        resource = {"id": f"CAP{uuid.uuid4().hex[:14].upper()}", "invoice_id": step["number"]}
    event_id = f"WH-{uuid.uuid4().hex[:17].upper()}"
    created = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    event = {
        "id": event_id,
        "create_time": created,
        "resource_type": "invoices" if kind.startswith("INVOICING.") else "capture",
        "event_type": kind,
        "summary": f"{kind} for {step['number']}",
        "resource": resource,
    }
    headers = server.sign_webhook(event, created, peer.config().require("webhook_id"))
    return Signed(event_id, json.dumps(event).encode(), headers)


BUILDERS: Mapping[str, Callable[[Any, str, Mapping[str, Any], int], Signed]] = {
    "stripe": _stripe,
    "adyen": _adyen,
    "paypal": _paypal,
}


def notification(
    peer: Any, status: str, step: Mapping[str, Any], *, at: int | None = None
) -> Signed:
    """What ``peer``'s rail sends when the invoice of ``step`` (its ``delivered`` status step)
    turns ``status``; ``at`` is the signing time in Unix seconds (now by default)."""
    if status not in STATUSES:
        raise ValueError(f"no notification for {status!r}; one of {', '.join(STATUSES)}")
    return BUILDERS[peer.rail](peer, status, step, int(time.time()) if at is None else at)


def send(url: str, signed: Signed, timeout: float = 30) -> tuple[int, bytes]:
    """POST ``signed`` to ``url`` as the rail does; the HTTP status and body of the answer."""
    headers = {"Content-Type": "application/json", **signed.headers}
    request = urllib.request.Request(url, signed.body, headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return int(answer.status), bytes(answer.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), bytes(exc.read())
