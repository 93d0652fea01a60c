"""The PayPal stand-in's Payments v2: the captures payers made, and their refunds.

A payer paying an invoice through its link makes a capture (Payments v2); the
invoice lists it among ``payments.transactions`` as a ``PAYPAL`` payment whose
``payment_id`` is the capture id. ``POST /v2/payments/captures/{capture_id}/refund``
gives captured money back, with the rules Payments v2 documents
(``shared/rails/paypal/payments_payment_v2.json``, ``captures.refund``): at most what
the capture holds less what was refunded (``REFUND_AMOUNT_EXCEEDED``, then
``CAPTURE_FULLY_REFUNDED``), in the capture's currency
(``REFUND_CAPTURE_CURRENCY_MISMATCH``), a positive amount
(``CANNOT_BE_ZERO_OR_NEGATIVE``), no decimals for JPY/HUF/TWD
(``DECIMALS_NOT_SUPPORTED``), each ``invoice_id`` once (``DUPLICATE_INVOICE_ID``),
and ``PayPal-Request-Id`` replayed: the same id gets the first answer, nothing new.
The caller holds the server's lock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from connectors.rails.sandbox.servers.base import Response

CAPTURES = "/v2/payments/captures"
ZERO_DECIMAL = frozenset({"HUF", "JPY", "TWD"})
ErrorFactory = Callable[[int, str, str], Response]
"""(status, issue, description) -> PayPal's error answer."""


@dataclass
class Capture:
    id: str
    currency: str
    amount: Decimal
    invoice_id: str
    """The PayPal invoice it paid."""
    invoice_number: str
    refunded: Decimal = Decimal(0)

    @property
    def status(self) -> str:
        if not self.refunded:
            return "COMPLETED"
        return "REFUNDED" if self.refunded == self.amount else "PARTIALLY_REFUNDED"


@dataclass(frozen=True)
class CaptureRefund:
    id: str
    capture: str
    amount: Decimal


@dataclass
class Captures:
    captures: dict[str, Capture] = field(default_factory=dict)
    refunds: dict[str, CaptureRefund] = field(default_factory=dict)
    """By the PayPal-Request-Id that made each (its id without one)."""
    _replies: dict[str, Response] = field(default_factory=dict)
    _invoice_ids: set[str] = field(default_factory=set)
    _count: int = 0

    def capture(self, invoice_id: str, number: str, currency: str, amount: Decimal) -> Capture:
        self._count += 1
        made = Capture(f"7RY{self._count:014d}", currency, amount, invoice_id, number)
        self.captures[made.id] = made
        return made

    def refund(
        self, capture_id: str, body: Any, request_id: str | None, error: ErrorFactory
    ) -> tuple[Response, CaptureRefund | None]:
        """PayPal's answer, and the refund made (None when refused or replayed)."""
        if request_id and request_id in self._replies:
            return self._replies[request_id], None
        response, made = self._refund(capture_id, body or {}, request_id, error)
        if request_id and response.status < 300:  # a refused refund gave nothing back
            self._replies[request_id] = response
        return response, made

    def _refund(
        self, capture_id: str, body: dict[str, Any], request_id: str | None, error: ErrorFactory
    ) -> tuple[Response, CaptureRefund | None]:
        capture = self.captures.get(capture_id)
        if capture is None:
            return error(404, "INVALID_RESOURCE_ID", "Specified resource ID does not exist."), None
        left = capture.amount - capture.refunded
        asked = body.get("amount") or {"currency_code": capture.currency, "value": f"{left:f}"}
        amount = Decimal(asked["value"])
        refusal: tuple[str, str] | None = None
        if left <= 0:
            refusal = "CAPTURE_FULLY_REFUNDED", "The capture has already been fully refunded"
        elif asked["currency_code"] != capture.currency:
            refusal = (
                "REFUND_CAPTURE_CURRENCY_MISMATCH",
                "Refund must be in the same currency as the capture",
            )
        elif amount <= 0:
            refusal = "CANNOT_BE_ZERO_OR_NEGATIVE", "Must be greater than zero."
        elif capture.currency in ZERO_DECIMAL and amount != amount.to_integral_value():
            refusal = "DECIMALS_NOT_SUPPORTED", "Currency does not support decimals."
        elif amount > left:
            refusal = (
                "REFUND_AMOUNT_EXCEEDED",
                "The refund amount must be less than or equal to the capture amount that has "
                "not yet been refunded.",
            )
        elif body.get("invoice_id") in self._invoice_ids:
            refusal = "DUPLICATE_INVOICE_ID", "Invoice ID was previously used to refund a capture."
        if refusal:
            return error(422, *refusal), None
        if body.get("invoice_id"):
            self._invoice_ids.add(body["invoice_id"])
        capture.refunded += amount
        made = CaptureRefund(f"1RF{len(self.refunds) + 1:014d}", capture.id, amount)
        self.refunds[request_id or made.id] = made
        money = {"currency_code": capture.currency, "value": f"{amount:f}"}
        total = {"currency_code": capture.currency, "value": f"{capture.refunded:f}"}
        refund: dict[str, Any] = {
            "id": made.id,
            "status": "COMPLETED",
            "amount": money,
            "seller_payable_breakdown": {"gross_amount": money, "total_refunded_amount": total},
            "create_time": "2025-02-15T10:00:00Z",
            "update_time": "2025-02-15T10:00:00Z",
            "links": [
                {
                    "href": f"https://api-m.sandbox.paypal.com/v2/payments/refunds/{made.id}",
                    "rel": "self",
                    "method": "GET",
                },
                {
                    "href": f"https://api-m.sandbox.paypal.com{CAPTURES}/{capture.id}",
                    "rel": "up",
                    "method": "GET",
                },
            ],
        }
        for name in ("invoice_id", "note_to_payer", "custom_id"):
            if body.get(name):
                refund[name] = body[name]
        return Response(201, refund), made
