"""PayPal credit notes: which refund gives the money back, and how much there is (no I/O)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
import requests

from connectors.rails import policy
from connectors.rails.base import PermanentRailError, TransientRailError
from connectors.rails.providers.paypal import (
    Capture,
    paypal_captures,
    rail_error,
    refund_capture,
    refund_limits,
)


def usd(value: str) -> dict[str, str]:
    return {"currency_code": "USD", "value": value}


def payment(kind: str, payment_id: str | None, value: str, method: str = "PAYPAL") -> Any:
    made: dict[str, Any] = {"type": kind, "method": method, "amount": usd(value)}
    if payment_id:
        made["payment_id"] = payment_id
    return made


def invoice(*payments: Any, refunds: tuple[Any, ...] = ()) -> dict[str, Any]:
    document: dict[str, Any] = {"id": "INV2-TEST"}
    if payments:
        paid = sum(Decimal(p["amount"]["value"]) for p in payments)
        document["payments"] = {"paid_amount": usd(f"{paid}"), "transactions": list(payments)}
    if refunds:
        total = sum(Decimal(r["amount"]["value"]) for r in refunds)
        document["refunds"] = {"refund_amount": usd(f"{total}"), "transactions": list(refunds)}
    return document


def refund(kind: str, value: str) -> dict[str, Any]:
    return {"type": kind, "refund_id": "R", "method": "PAYPAL", "amount": usd(value)}


def test_a_payment_made_through_paypal_is_refunded_from_its_capture() -> None:
    paid = invoice(payment("PAYPAL", "7RY00000000000001", "120.50"))
    assert paypal_captures(paid) == [Capture("7RY00000000000001", Decimal("120.50"))]
    assert refund_capture(paid, "CN-1") == Capture("7RY00000000000001", Decimal("120.50"))


@pytest.mark.parametrize(
    "document",
    [
        invoice(),  # nobody paid
        invoice(payment("EXTERNAL", "EXTR-1", "120.50", "BANK_TRANSFER")),
        # recorded by the merchant: method PAYPAL and a payment_id, but no money PayPal holds
        invoice(payment("EXTERNAL", "EXTR-2", "120.50", "PAYPAL")),
        invoice(payment("PAYPAL", None, "120.50")),  # no capture to name
    ],
)
def test_anything_else_is_a_recorded_refund(document: dict[str, Any]) -> None:
    assert refund_capture(document, "CN-1") is None


def test_a_paypal_payment_beside_a_recorded_one_is_still_the_capture() -> None:
    mixed = invoice(
        payment("EXTERNAL", "EXTR-1", "20.00", "BANK_TRANSFER"),
        payment("PAYPAL", "7RY00000000000002", "100.50"),
    )
    assert refund_capture(mixed, "CN-1") == Capture("7RY00000000000002", Decimal("100.50"))
    # The capture bounds the refund, not all that was paid.
    assert refund_limits(mixed, refund_capture(mixed, "CN-1")) == (Decimal(0), Decimal("100.50"))


def test_an_invoice_paid_in_several_paypal_payments_is_refused() -> None:
    twice = invoice(payment("PAYPAL", "7RY-A", "60.00"), payment("PAYPAL", "7RY-B", "60.50"))
    with pytest.raises(PermanentRailError, match="2 PayPal payments") as refused:
        refund_capture(twice, "CN-1")
    assert refused.value.code == "several_paypal_payments"


def test_limits_count_paypal_refunds_against_the_capture_and_all_refunds_when_recorded() -> None:
    capture = Capture("7RY-A", Decimal("100.00"))
    document = invoice(
        payment("PAYPAL", "7RY-A", "100.00"),
        payment("EXTERNAL", "EXTR-1", "20.00", "CASH"),
        refunds=(refund("PAYPAL", "30.00"), refund("EXTERNAL", "5.00")),
    )
    assert refund_limits(document, capture) == (Decimal("30.00"), Decimal("100.00"))
    assert refund_limits(document, None) == (Decimal("35.00"), Decimal("120.00"))
    assert refund_limits(invoice(), None) == (Decimal(0), Decimal(0))


def answer(status: int, body: Any) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode()
    return response


@pytest.mark.parametrize(
    ("status", "issue", "verdict"),
    [
        (422, "REFUND_AMOUNT_EXCEEDED", policy.Verdict.REFUSE),
        (422, "CAPTURE_FULLY_REFUNDED", policy.Verdict.REFUSE),
        (422, "REFUND_FAILED_INSUFFICIENT_FUNDS", policy.Verdict.REFUSE),
        (404, "INVALID_RESOURCE_ID", policy.Verdict.REFUSE),
        # "a previous request on this resource is in progress": the same request later
        (409, "PREVIOUS_REQUEST_IN_PROGRESS", policy.Verdict.RETRY),
        (503, "SERVICE_UNAVAILABLE", policy.Verdict.RETRY),
        (401, "AUTHENTICATION_FAILURE", policy.Verdict.OUTAGE),
    ],
)
def test_capture_refund_refusals_follow_the_rails_policy(
    status: int, issue: str, verdict: policy.Verdict
) -> None:
    error = rail_error(
        answer(status, {"name": "X", "details": [{"issue": issue, "description": "d"}]}),
        "capture refund",
    )
    assert error.code == issue
    assert policy.classify(error) is verdict
    if issue == "PREVIOUS_REQUEST_IN_PROGRESS":
        assert isinstance(error, TransientRailError)
