"""One retry policy for every rail: the same answer means the same thing on every rail."""

from __future__ import annotations

import pytest
import stripe

from connectors.rails.base import PermanentRailError, RailError, TransientRailError
from connectors.rails.http import classify as http_classify
from connectors.rails.policy import Verdict, classify, status_of
from connectors.rails.providers.stripe import classify as stripe_classify


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504, 599])
def test_timeouts_throttling_and_5xx_retry_whatever_the_rail_said(status: int) -> None:
    for error in (PermanentRailError, TransientRailError):
        assert classify(error("x", status=status)) is Verdict.RETRY, (error, status)


@pytest.mark.parametrize("status", [400, 404, 409, 422])
def test_validation_4xx_is_refused(status: int) -> None:
    assert classify(PermanentRailError("bad", status=status)) is Verdict.REFUSE


def test_a_4xx_the_rail_marked_transient_is_retried() -> None:
    # Stripe's 409 "idempotency key in use", Adyen's transient-error header.
    assert classify(TransientRailError("in use", status=409)) is Verdict.RETRY


@pytest.mark.parametrize("status", [401, 403])
def test_auth_failures_are_a_rail_outage_never_a_dead_letter(status: int) -> None:
    assert classify(PermanentRailError("denied", status=status)) is Verdict.OUTAGE
    assert classify(TransientRailError("denied", status=status)) is Verdict.OUTAGE


def test_a_throttling_code_retries_even_on_403() -> None:
    limit = PermanentRailError("limit", code="REQUEST_LIMIT_EXCEEDED", status=403)
    assert classify(limit) is Verdict.RETRY


def test_without_a_status_the_errors_kind_decides() -> None:
    assert classify(TransientRailError("timeout", code="connection")) is Verdict.RETRY
    assert classify(PermanentRailError("unknown currency", code="currency")) is Verdict.REFUSE
    assert classify(RailError("?")) is Verdict.RETRY
    assert classify(KeyError("a bug in a rail module")) is Verdict.RETRY


def test_the_status_is_read_from_http_codes_and_digit_codes() -> None:
    assert status_of(PermanentRailError("webhook", code="http_401")) == 401
    assert status_of(PermanentRailError("netsuite", code="403")) == 403
    assert status_of(PermanentRailError("netsuite", code="USER_ERROR")) is None
    assert classify(PermanentRailError("webhook", code="http_401")) is Verdict.OUTAGE
    assert classify(PermanentRailError("webhook", code="http_425")) is Verdict.RETRY


def test_the_shared_http_rule_passes_the_status_on() -> None:
    error = http_classify("PayPal 401 AUTHENTICATION_FAILURE", "AUTH", 401, {})
    assert isinstance(error, PermanentRailError) and error.status == 401
    assert classify(error) is Verdict.OUTAGE


def raised_over(library_error: Exception, rail_error: RailError) -> RailError:
    """``rail_error`` as a rail raises it: ``raise ... from None`` inside the handler."""
    try:
        try:
            raise library_error
        except Exception:
            raise rail_error from None
    except RailError as exc:
        return exc


def test_stripe_401_is_an_outage_although_stripe_calls_it_transient() -> None:
    library = stripe.AuthenticationError("Invalid API Key provided", http_status=401)
    error = raised_over(library, stripe_classify(library))
    assert isinstance(error, TransientRailError)
    assert status_of(error) == 401
    assert classify(error) is Verdict.OUTAGE


def test_a_status_on_the_library_errors_response_is_found() -> None:
    class Response:
        status_code = 403

    class HTTPError(Exception):
        response = Response()

    error = raised_over(HTTPError(), PermanentRailError("SAP csrf: forbidden"))
    assert status_of(error) == 403 and classify(error) is Verdict.OUTAGE


def test_a_boolean_or_out_of_range_attribute_is_not_a_status() -> None:
    class Odd(Exception):
        status = True
        status_code = 7

    assert status_of(Odd()) is None
