"""Stripe rail: minor units as Stripe counts them, and Stripe's errors as retry or drop."""

from __future__ import annotations

from decimal import Decimal

import pytest
import stripe

from connectors.rails.base import PermanentRailError, TransientRailError
from connectors.rails.providers.stripe import classify, from_minor, step_key, to_minor


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("12.34", "USD", 1234),
        ("-5.00", "EUR", -500),
        ("0", "usd", 0),
        ("1500", "JPY", 1500),
        ("1500.000", "KRW", 1500),
        ("1.230", "KWD", 1230),
        ("990", "ISK", 99000),
    ],
)
def test_minor_units(amount: str, currency: str, minor: int) -> None:
    assert to_minor(Decimal(amount), currency) == minor


@pytest.mark.parametrize(
    ("amount", "currency"),
    [("12.345", "USD"), ("10.5", "JPY"), ("1.234", "KWD"), ("99.5", "ISK")],
)
def test_amounts_stripe_cannot_take_exactly_are_refused_not_rounded(
    amount: str, currency: str
) -> None:
    with pytest.raises(PermanentRailError) as err:
        to_minor(Decimal(amount), currency)
    assert err.value.code == "amount_precision"


def test_step_keys_derive_from_the_invoice_key() -> None:
    assert step_key("railyard-abc", "line-3") == "railyard-abc:line-3"


def error(cls: type[stripe.StripeError], status: int | None, **extra: object) -> stripe.StripeError:
    body = {"error": {"type": "api_error", "message": "boom", **extra}}
    if cls is stripe.APIConnectionError:
        return cls("connection reset")
    return cls(
        "boom", http_body=None, http_status=status, json_body=body, headers={"retry-after": "3"}
    )


@pytest.mark.parametrize(
    ("exc", "retry_after"),
    [
        (error(stripe.APIConnectionError, None), None),
        (error(stripe.RateLimitError, 429), 3.0),
        (error(stripe.APIError, 500), 3.0),
        (error(stripe.APIError, 503), 3.0),
        (error(stripe.IdempotencyError, 409), 3.0),
    ],
)
def test_transient(exc: stripe.StripeError, retry_after: float | None) -> None:
    result = classify(exc)
    assert isinstance(result, TransientRailError)
    assert result.retry_after == retry_after


def test_invalid_requests_and_card_errors_are_permanent_with_stripes_message() -> None:
    invalid = stripe.InvalidRequestError(
        "No such customer: 'cus_x'",
        "customer",
        "resource_missing",
        http_status=404,
        json_body={
            "error": {
                "type": "invalid_request_error",
                "code": "resource_missing",
                "message": "No such customer: 'cus_x'",
            }
        },
    )
    result = classify(invalid)
    assert isinstance(result, PermanentRailError)
    assert result.code == "resource_missing"
    assert "No such customer: 'cus_x'" in str(result) and "404" in str(result)
    card = stripe.CardError("Your card was declined.", None, "card_declined", http_status=402)
    assert isinstance(classify(card), PermanentRailError)
    reused = error(stripe.IdempotencyError, 400)
    assert isinstance(classify(reused), PermanentRailError), "same key, other parameters"


@pytest.mark.parametrize(
    ("minor", "currency", "amount"),
    [(1234, "USD", "12.34"), (1500, "JPY", "1500"), (1230, "KWD", "1.230"), (99000, "ISK", "990")],
)
def test_minor_units_back_to_the_currency_unit(minor: int, currency: str, amount: str) -> None:
    assert from_minor(minor, currency) == Decimal(amount)
    assert to_minor(from_minor(minor, currency), currency) == minor
