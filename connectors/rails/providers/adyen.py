"""Adyen: charge the invoice total to the customer's stored card, merchant-initiated.

One Checkout ``POST /payments`` per invoice (the ``Adyen`` SDK, Checkout v72):
``shopperInteraction=ContAuth`` with ``recurringProcessingModel=UnscheduledCardOnFile``
against ``paymentMethod.storedPaymentMethodId``, the amount in the currency's minor
units (JPY has none, KWD three), ``reference`` = invoice number and
``shopperReference`` = the customer's account on Adyen.

Idempotency: the ``Idempotency-Key`` header carries ``invoice.idempotency_key``.
Adyen keeps keys for at least 31 days per company account and answers a repeat
with the first response, so a redelivery charges nothing new.

Settings (``RAILYARD_RAIL_ADYEN_<KEY>``): ``API_KEY`` (secret), ``MERCHANT_ACCOUNT``,
``STORED_PAYMENT_METHOD_ID`` (default for every customer; a per-customer token is
``STORED_PAYMENT_METHOD_ID_<ACCOUNT>``), ``RETURN_URL``, ``ENVIRONMENT``
(``test``/``live``), ``LIVE_ENDPOINT_PREFIX`` (live only), ``BASE_URL`` (the
Checkout base including the version, e.g. ``https://…/v72``; tests point it at a
local server), ``TIMEOUT`` seconds (default 30).

A credit note is a refund of the payment that collected the invoice it credits:
``POST /payments/{paymentPspReference}/refunds`` with the positive amount in minor
units, ``reference`` = the credit note's number and ``Idempotency-Key`` = its
key. Checkout cannot look a payment up by the merchant's reference, so the rail
asks a :class:`PaymentReferences` for the pspReference of the credited invoice;
the default, :class:`DeliveredPayments`, knows the payments this rail object made.
An unknown payment is permanent (``payment_reference_unknown``). Adyen refuses
refunds above what was captured (422, ``137``): ``credit_exceeds_invoice``.

A negative total on an invoice is refused; a zero total is not sent at all.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar, Protocol

import Adyen
import requests
from Adyen.exceptions import AdyenAPIResponseError, AdyenError

from connectors.rails.base import Delivery, PermanentRailError, TransientRailError
from connectors.rails.config import RailConfig
from connectors.rails.credit import credit_amount, credited_invoice, is_credit
from connectors.rails.http import classify
from connectors.rails.registry import register
from streams.domain.catalog.currency import minor_units
from streams.domain.invoice import Invoice

ACCEPTED = frozenset({"Authorised", "Pending", "Received"})
"""Result codes after which the payment is Adyen's to finish (webhooks tell the rest)."""


def minor_amount(amount: Decimal, currency: str) -> int:
    """``amount`` in the currency's minor units; refuses an amount with finer digits."""
    places = minor_units(currency)
    if places is None:
        raise PermanentRailError(f"Adyen: unknown currency {currency!r}", code="currency")
    scaled = amount.scaleb(places)
    if scaled != scaled.to_integral_value():
        raise PermanentRailError(
            f"Adyen: {amount} {currency} has more than {places} decimal places", code="amount"
        )
    return int(scaled)


def payment_request(invoice: Invoice, config: RailConfig) -> dict[str, Any]:
    """The Checkout ``PaymentRequest`` body for ``invoice`` (pure: no I/O)."""
    # The shopper reference is the merchant's own name for the shopper, fixed when
    # the card was stored: the customer's account when the catalog gives one, else
    # Railyard's customer id.
    account = invoice.account or invoice.customer
    token = config.get(f"stored_payment_method_id_{account.lower()}") or config.get(
        "stored_payment_method_id"
    )
    if not token:
        raise PermanentRailError(
            f"Adyen: no stored payment method for shopper {account}; set "
            "RAILYARD_RAIL_ADYEN_STORED_PAYMENT_METHOD_ID (or …_ID_<ACCOUNT>)",
            code="config",
        )
    return {
        "amount": {
            "currency": invoice.currency,
            "value": minor_amount(invoice.total, invoice.currency),
        },
        "merchantAccount": config.require("merchant_account"),
        "reference": invoice.number,
        "shopperReference": account,
        "paymentMethod": {"type": "scheme", "storedPaymentMethodId": token},
        "shopperInteraction": "ContAuth",
        "recurringProcessingModel": "UnscheduledCardOnFile",
        "returnUrl": config.require("return_url"),
        "metadata": {"invoiceId": invoice.id, "customer": invoice.customer},
    }


def refund_request(note: Invoice, config: RailConfig) -> dict[str, Any]:
    """The Checkout ``PaymentRefundRequest`` body for a credit note (pure: no I/O)."""
    return {
        "amount": {
            "currency": note.currency,
            "value": minor_amount(credit_amount(note), note.currency),
        },
        "merchantAccount": config.require("merchant_account"),
        "reference": note.number,
        "merchantRefundReason": "OTHER",
    }


class PaymentReferences(Protocol):
    """Where the rail finds the pspReference of the payment that collected an invoice."""

    def psp_reference(self, invoice_id: str) -> str | None: ...

    def record(self, invoice_id: str, psp_reference: str) -> None: ...


class DeliveredPayments:
    """The payments this rail object made, by Railyard invoice id (kept in memory only)."""

    def __init__(self) -> None:
        self._by_invoice: dict[str, str] = {}

    def psp_reference(self, invoice_id: str) -> str | None:
        return self._by_invoice.get(invoice_id)

    def record(self, invoice_id: str, psp_reference: str) -> None:
        self._by_invoice[invoice_id] = psp_reference


def rail_error(exc: AdyenError) -> TransientRailError | PermanentRailError:
    """Adyen's answer as a Railyard error, built from its error code and text only."""
    status = exc.status_code if isinstance(exc.status_code, int) else 0
    body = exc.message if isinstance(exc.message, dict) else {}
    code = str(body.get("errorCode") or status or "error")
    text = body.get("message") or type(exc).__name__
    message = f"Adyen {status or ''} {code}: {text}".replace("  ", " ")
    headers = exc.headers if hasattr(exc.headers, "get") else {}
    # Adyen flags a retryable idempotency conflict (a concurrent request with the same
    # key) with the transient-error header; 429 and 5xx are the usual transients.
    return classify(
        message,
        code,
        status,
        headers,
        transient=str(headers.get("transient-error", "")).lower() == "true",
    )


class AdyenRail:
    """Charges an invoice through Adyen Checkout ``/payments``."""

    name: ClassVar[str] = "adyen"

    def __init__(self, config: RailConfig, payments: PaymentReferences | None = None) -> None:
        self.config = config
        self.payments = payments if payments is not None else DeliveredPayments()
        for key in ("merchant_account", "return_url"):  # fail at start-up, not per invoice
            config.require(key)
        live = (config.get("environment") or "test").lower() == "live"
        adyen = Adyen.Adyen(
            xapikey=config.secret("api_key").get_secret_value(),
            platform="live" if live else "test",
            live_endpoint_prefix=config.get("live_endpoint_prefix"),
            http_timeout=int(config.get("timeout") or 30),
            http_force="requests",
        )
        self._payments = adyen.checkout.payments_api
        self._modifications = adyen.checkout.modifications_api
        base_url = config.get("base_url")
        if base_url:
            self._payments.baseUrl = base_url.rstrip("/")
            self._modifications.baseUrl = base_url.rstrip("/")

    def __repr__(self) -> str:
        return f"AdyenRail(merchant_account={self.config.get('merchant_account')!r})"

    def deliver(self, invoice: Invoice) -> Delivery:
        if is_credit(invoice):
            return self._refund(invoice)
        if invoice.total < 0:
            raise PermanentRailError(
                f"Adyen: {invoice.number} totals {invoice.total} {invoice.currency}; "
                "a payment cannot be negative",
                code="negative_total",
            )
        if invoice.total == 0:
            return Delivery(self.name, invoice.id, {}, status="nothing_to_charge")
        request = payment_request(invoice, self.config)
        try:
            result = self._payments.payments(request, idempotency_key=invoice.idempotency_key)
        except AdyenAPIResponseError as exc:
            raise rail_error(exc) from None
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise TransientRailError(f"Adyen unreachable: {type(exc).__name__}") from None
        except AdyenError as exc:
            raise PermanentRailError(f"Adyen client: {type(exc).__name__}") from None
        body = result.message or {}
        code = str(body.get("resultCode", ""))
        psp = str(body.get("pspReference") or result.psp or "")
        if code not in ACCEPTED:
            reason = body.get("refusalReason") or "no reason given"
            raise PermanentRailError(
                f"Adyen {code or 'no resultCode'} for {invoice.number} (pspReference {psp}): {reason}",
                code=code or None,
            )
        self.payments.record(invoice.id, psp)
        return Delivery(self.name, invoice.id, {"pspReference": psp}, status=code)

    def _refund(self, note: Invoice) -> Delivery:
        credited = credited_invoice(note)
        payment = self.payments.psp_reference(credited.id)
        if payment is None:
            raise PermanentRailError(
                f"Adyen: {note.number} credits {credited.number}, but the pspReference of the "
                "payment that collected it is not known to this rail",
                code="payment_reference_unknown",
            )
        request = refund_request(note, self.config)
        try:
            result = self._modifications.refund_captured_payment(
                request, payment, idempotency_key=note.idempotency_key
            )
        except AdyenAPIResponseError as exc:
            error = rail_error(exc)
            if error.code == "137":
                raise PermanentRailError(
                    f"Adyen: {note.number} refunds {request['amount']['value']} (minor units) "
                    f"of payment {payment} for {credited.number}: that would credit more than "
                    f"was captured ({error})",
                    code="credit_exceeds_invoice",
                ) from None
            raise error from None
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise TransientRailError(f"Adyen unreachable: {type(exc).__name__}") from None
        except AdyenError as exc:
            raise PermanentRailError(f"Adyen client: {type(exc).__name__}") from None
        body = result.message or {}
        references = {
            "pspReference": str(body.get("pspReference") or ""),
            "paymentPspReference": payment,
        }
        return Delivery(self.name, note.id, references, status=str(body.get("status") or ""))

    def status(self, delivery: Delivery) -> str:
        """The result code seen at delivery.

        Checkout has no endpoint to read a payment back; later states (captured,
        charged back, ...) arrive as Adyen webhooks, not through this call.
        """
        return delivery.status


@register("adyen")
def create(config: RailConfig) -> AdyenRail:
    return AdyenRail(config)
