"""PayPal: a PayPal invoice (Invoicing v2) created as a draft, then sent to the payer.

``paypal-server-sdk`` (2.x) covers Orders, Payments, Vault, Subscriptions and
Transaction Search but not Invoicing, so this module speaks the Invoicing v2 REST
API with ``requests`` and OAuth 2.0 client credentials (``/v1/oauth2/token``).

Idempotency, two layers:

* ``PayPal-Request-Id`` = ``invoice.idempotency_key`` on the create, PayPal's
  request-level idempotency header: a repeat gets the first answer back;
* ``detail.invoice_number`` = the invoice number, which PayPal keeps unique per
  merchant: if the create answers ``DUPLICATE_INVOICE_NUMBER`` the invoice is
  found with ``search-invoices`` and delivery carries on from there.

The send is only made while the invoice is a ``DRAFT``; a send refused because the
invoice has already left that state counts as done.

A credit note gives back money paid on the invoice it credits, found by its
number (``search-invoices``); ``PayPal-Request-Id`` = the credit note's idempotency
key, so a redelivery gets the first answer back. Which refund depends on how the
invoice was paid (:func:`refund_capture`, from its ``payments.transactions``):

* paid through PayPal (a transaction of ``type: PAYPAL``, whose ``payment_id`` is
  the Payments v2 capture): the captured money is refunded, Payments v2 ``POST
  /v2/payments/captures/{capture_id}/refund`` with the positive ``amount``, the
  note's number as ``invoice_id``. PayPal refuses more than the capture holds
  (``REFUND_AMOUNT_EXCEEDED``, ``CAPTURE_FULLY_REFUNDED``): the rail words both as
  ``credit_exceeds_invoice`` with the amounts. An invoice paid in several PayPal
  payments is refused (``several_paypal_payments``): a note refunds one capture.
* otherwise (paid outside PayPal, recorded on the invoice; or not paid): a refund
  *recorded* on the invoice (Invoicing v2 ``POST
  /v2/invoicing/invoices/{invoice_id}/refunds``, ``method: PAYPAL``). PayPal
  refuses refunds above what was paid (``INVALID_REFUND_AMOUNT``, or
  ``CANNOT_PROCESS_REFUNDS`` once refunded in full: ``credit_exceeds_invoice``
  again) and on an invoice nobody paid (``CANNOT_PROCESS_REFUNDS``).

All these refusals are permanent.

Lines with a positive (or zero) amount become items (quantity 1 at the line's
rounded amount, the usage detail in the item description, so PayPal's item total
is exactly the invoice's); discounts, caps and prepaid credits become the
invoice-level discount. JPY, HUF and TWD take no decimals at PayPal; KWD and the
other three-decimal currencies are not offered by PayPal and are refused by it.

Settings (``RAILYARD_RAIL_PAYPAL_<KEY>``): ``CLIENT_ID``, ``CLIENT_SECRET``
(secret), ``ENVIRONMENT`` (``sandbox``/``live``), ``BASE_URL`` (overrides it),
``INVOICER_EMAIL``, ``PAYMENT_TERM`` (default ``NET_30``), ``TIMEOUT`` seconds.
The customer's ``account`` is the payer's e-mail address (optional: without it
PayPal sends no e-mail and the invoice is paid through its link).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

import requests

from connectors.rails.base import Delivery, PermanentRailError, TransientRailError
from connectors.rails.config import RailConfig
from connectors.rails.credit import check_within, credit_amount, credited_invoice, is_credit
from connectors.rails.http import classify
from connectors.rails.registry import register
from streams.domain.catalog.currency import minor_units
from streams.domain.invoice import Invoice

HOSTS = {"live": "https://api-m.paypal.com", "sandbox": "https://api-m.sandbox.paypal.com"}
ZERO_DECIMAL = frozenset({"HUF", "JPY", "TWD"})
"""Currencies PayPal takes without decimals (HUF and TWD have two in ISO 4217)."""
MAX_ITEMS = 100
RETRY_ISSUES = frozenset({"PREVIOUS_REQUEST_IN_PROGRESS"})
"""Refusals (409) that say "not yet": the same request later goes through."""
OVER_REFUND = frozenset(
    {
        "INVALID_REFUND_AMOUNT",
        "CANNOT_PROCESS_REFUNDS",
        "REFUND_AMOUNT_EXCEEDED",
        "CAPTURE_FULLY_REFUNDED",
    }
)
"""PayPal's ways of saying a refund is above what is left to give back."""


def money(amount: Decimal, currency: str) -> dict[str, str]:
    """PayPal's ``money``: the value as a string with the currency's decimals."""
    places = 0 if currency in ZERO_DECIMAL else minor_units(currency)
    if places is None:
        raise PermanentRailError(f"PayPal: unknown currency {currency!r}", code="currency")
    exact = amount.quantize(Decimal(1).scaleb(-places))
    if exact != amount:
        raise PermanentRailError(
            f"PayPal: {amount} {currency} needs more than {places} decimal places", code="amount"
        )
    return {"currency_code": currency, "value": f"{exact:f}"}


def invoice_body(invoice: Invoice, config: RailConfig) -> dict[str, Any]:
    """The Invoicing v2 ``invoice`` document for ``invoice`` (pure: no I/O)."""
    currency = invoice.currency
    items = []
    discount = invoice.credits_total
    for line in invoice.lines:
        if line.amount < 0:
            discount -= line.amount
            continue
        detail = line.kind.value
        if line.quantity is not None and line.unit_amount is not None:
            detail = f"{line.kind.value}: {line.quantity:f} x {line.unit_amount:f} {currency}"
        item: dict[str, Any] = {
            "name": line.description[:200],
            "description": detail[:1000],
            "quantity": "1",
            "unit_amount": money(line.amount, currency),
        }
        if line.service_start is not None:
            item["item_date"] = f"{line.service_start:%Y-%m-%d}"
        items.append(item)
    if len(items) > MAX_ITEMS:
        raise PermanentRailError(
            f"PayPal: {invoice.number} has {len(items)} items; PayPal takes at most {MAX_ITEMS}",
            code="items",
        )
    # Without the payer's e-mail the invoice is still payable (by its link), PayPal
    # just e-mails nobody.
    billing: dict[str, Any] = {"business_name": invoice.customer_name[:300]}
    if invoice.account:
        billing["email_address"] = invoice.account
    body: dict[str, Any] = {
        "detail": {
            "currency_code": currency,
            "invoice_number": invoice.number,
            "invoice_date": f"{invoice.issued_at:%Y-%m-%d}",
            "reference": invoice.id,
            "note": f"Usage from {invoice.period_start:%Y-%m-%d} to {invoice.period_end:%Y-%m-%d}",
            "memo": f"railyard {invoice.idempotency_key}",
            "payment_term": {"term_type": config.get("payment_term") or "NET_30"},
        },
        "primary_recipients": [{"billing_info": billing}],
        "items": items,
    }
    invoicer = config.get("invoicer_email")
    if invoicer:
        body["invoicer"] = {"email_address": invoicer}
    if discount:
        body["amount"] = {
            "breakdown": {"discount": {"invoice_discount": {"amount": money(discount, currency)}}}
        }
    return body


def rail_error(response: requests.Response, action: str) -> TransientRailError | PermanentRailError:
    """PayPal's error document as a Railyard error (name, issue and description only)."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    details = body.get("details") or [{}]
    issue = details[0].get("issue") if isinstance(details[0], dict) else None
    described = details[0].get("description") if isinstance(details[0], dict) else None
    name = body.get("name") or body.get("error") or "ERROR"
    text = described or body.get("message") or body.get("error_description") or response.reason
    message = (
        f"PayPal {response.status_code} {name} on {action}: {issue + ': ' if issue else ''}{text}"
    )
    if body.get("debug_id"):
        message += f" (debug_id {body['debug_id']})"
    code = issue or name
    return classify(
        message, code, response.status_code, response.headers, transient=code in RETRY_ISSUES
    )


# -- refunds: which money goes back, and how much there is (pure) -------------------


@dataclass(frozen=True)
class Capture:
    """A payment made through PayPal on an invoice: its Payments v2 capture id and amount."""

    id: str
    amount: Decimal


def _value(money_: Mapping[str, Any] | None) -> Decimal:
    return Decimal(str(money_["value"])) if money_ and "value" in money_ else Decimal(0)


def paypal_captures(document: Mapping[str, Any]) -> list[Capture]:
    """The payments made through PayPal among the invoice's ``payments.transactions``.

    ``type`` is set by PayPal (read-only): ``PAYPAL`` for a payment made through PayPal,
    whose ``payment_id`` is its transaction, the capture; ``EXTERNAL`` for one the
    merchant recorded, which has a ``payment_id`` too and may say ``method: PAYPAL``, but
    no money PayPal holds.
    """
    transactions = (document.get("payments") or {}).get("transactions") or []
    return [
        Capture(str(t["payment_id"]), _value(t.get("amount")))
        for t in transactions
        if t.get("type") == "PAYPAL" and t.get("payment_id")
    ]


def refund_capture(document: Mapping[str, Any], note_number: str) -> Capture | None:
    """The capture a credit note refunds, or None when the invoice holds no PayPal payment
    (its refund is then recorded). A note refunds one capture, so an invoice paid in
    several PayPal payments is refused."""
    captures = paypal_captures(document)
    if len(captures) > 1:
        raise PermanentRailError(
            f"PayPal: {note_number} credits an invoice paid in {len(captures)} PayPal payments "
            f"({', '.join(c.id for c in captures)}); a credit note refunds one",
            code="several_paypal_payments",
        )
    return captures[0] if captures else None


def refund_limits(document: Mapping[str, Any], capture: Capture | None) -> tuple[Decimal, Decimal]:
    """(given back so far, the most that can be): of the capture, through PayPal; else of
    what was recorded as paid on the invoice."""
    refunds = document.get("refunds") or {}
    if capture is None:
        paid = _value((document.get("payments") or {}).get("paid_amount"))
        return _value(refunds.get("refund_amount")), paid
    given = sum(
        (
            _value(t.get("amount"))
            for t in refunds.get("transactions") or []
            if t.get("type") == "PAYPAL"
        ),
        Decimal(0),
    )
    return given, capture.amount


class PayPalRail:
    """Creates and sends a PayPal invoice per Railyard invoice."""

    name: ClassVar[str] = "paypal"

    def __init__(self, config: RailConfig) -> None:
        self.config = config
        environment = (config.get("environment") or "sandbox").lower()
        self.base_url = (
            config.get("base_url") or HOSTS.get(environment) or HOSTS["sandbox"]
        ).rstrip("/")
        self._client_id = config.require("client_id")
        self._client_secret = config.secret("client_secret")
        self._timeout = float(config.get("timeout") or 30)
        self._http = requests.Session()
        self._token: str | None = None
        self._token_expires = 0.0

    def __repr__(self) -> str:
        return f"PayPalRail(base_url={self.base_url!r})"

    # -- HTTP --------------------------------------------------------------------

    def _access_token(self, *, renew: bool = False) -> str:
        if self._token and not renew and time.monotonic() < self._token_expires:
            return self._token
        response = self._send(
            "POST",
            "/v1/oauth2/token",
            "token",
            auth=(self._client_id, self._client_secret.get_secret_value()),
            data={"grant_type": "client_credentials"},
        )
        if response.status_code != 200:
            raise rail_error(response, "token")
        grant = response.json()
        self._token = str(grant["access_token"])
        # Renew a minute early so a token never expires between check and use.
        self._token_expires = time.monotonic() + float(grant.get("expires_in", 300)) - 60
        return self._token

    def _send(self, method: str, path: str, action: str, **kwargs: Any) -> requests.Response:
        try:
            return self._http.request(method, self.base_url + path, timeout=self._timeout, **kwargs)
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise TransientRailError(
                f"PayPal unreachable on {action}: {type(exc).__name__}"
            ) from None

    def _api(
        self,
        method: str,
        path: str,
        action: str,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        for attempt in (1, 2):
            bearer = {"Authorization": f"Bearer {self._access_token(renew=attempt == 2)}"}
            response = self._send(
                method, path, action, json=json, headers={**bearer, **(headers or {})}
            )
            if response.status_code != 401:
                break
        return response

    # -- the rail ----------------------------------------------------------------

    def deliver(self, invoice: Invoice) -> Delivery:
        if is_credit(invoice):
            return self._refund(invoice)
        if invoice.total < 0:
            raise PermanentRailError(
                f"PayPal: {invoice.number} totals {invoice.total} {invoice.currency}; "
                "a PayPal invoice cannot be negative",
                code="negative_total",
            )
        body = invoice_body(invoice, self.config)
        created = self._api(
            "POST",
            "/v2/invoicing/invoices",
            "create",
            json=body,
            headers={
                "PayPal-Request-Id": invoice.idempotency_key,
                "Prefer": "return=representation",
            },
        )
        if created.status_code in (200, 201):
            document = created.json()
        else:
            error = rail_error(created, "create")
            if error.code != "DUPLICATE_INVOICE_NUMBER":
                raise error
            document = self._find(invoice)
        invoice_id = str(document["id"])
        status = str(document.get("status", "DRAFT"))
        if status == "DRAFT":
            status = self._send_invoice(invoice_id)
        references = {"invoice": invoice_id, "invoice_number": invoice.number}
        return Delivery(self.name, invoice.id, references, status=status)

    def _refund(self, note: Invoice) -> Delivery:
        """The credit note as a refund of the captured payment, or one recorded on the invoice."""
        credited = credited_invoice(note)
        amount = credit_amount(note)
        matches = self._search(credited.number, note.currency)
        if not matches:
            raise PermanentRailError(
                f"PayPal: {note.number} credits {credited.number}, which PayPal does not hold",
                code="credited_invoice_missing",
            )
        original = matches[0]
        invoice_id = str(original["id"])
        capture = refund_capture(original, note.number)
        if capture is None:
            action, id_field = "refund", "refund_id"
            answer = self._record_refund(note, invoice_id, amount)
        else:
            action, id_field = "capture refund", "id"
            answer = self._refund_capture(note, credited.number, capture, amount)
        if answer.status_code not in (200, 201):
            error = rail_error(answer, action)
            given, most = refund_limits(original, capture)
            if error.code in OVER_REFUND and most:
                what = "what was paid on it" if capture is None else "what was paid through PayPal"
                check_within(note, amount, given, most, what)
                if capture is not None:  # PayPal knows of refunds the invoice does not show yet
                    raise PermanentRailError(
                        f"{note.number} credits {amount} {note.currency} on {credited.number}: "
                        f"{error}: that would credit more than {what}",
                        code="credit_exceeds_invoice",
                        status=error.status,
                    )
            raise error
        references = {
            "invoice": invoice_id,
            "invoice_number": credited.number,
            "refund": str(answer.json().get(id_field, "")),
        }
        if capture is not None:
            references["capture"] = capture.id
        return Delivery(self.name, note.id, references, status=self._status(invoice_id))

    def _record_refund(self, note: Invoice, invoice_id: str, amount: Decimal) -> requests.Response:
        """Invoicing v2: a refund recorded on the invoice (the money went back elsewhere)."""
        return self._api(
            "POST",
            f"/v2/invoicing/invoices/{invoice_id}/refunds",
            "refund",
            json={
                "method": "PAYPAL",
                "refund_date": f"{note.issued_at:%Y-%m-%d}",
                "amount": money(amount, note.currency),
            },
            headers={"PayPal-Request-Id": note.idempotency_key},
        )

    def _refund_capture(
        self, note: Invoice, credited: str, capture: Capture, amount: Decimal
    ) -> requests.Response:
        """Payments v2: the captured money given back to the payer."""
        reason = f"Credit note {note.number} on invoice {credited}"
        return self._api(
            "POST",
            f"/v2/payments/captures/{capture.id}/refund",
            "capture refund",
            json={
                "amount": money(amount, note.currency),
                "invoice_id": note.number[:127],  # PayPal takes each one once
                "note_to_payer": reason[:255],
            },
            headers={"PayPal-Request-Id": note.idempotency_key, "Prefer": "return=representation"},
        )

    def _search(self, number: str, currency: str) -> list[dict[str, Any]]:
        found = self._api(
            "POST",
            "/v2/invoicing/search-invoices",
            "search",
            json={"invoice_number": number, "currency_code": currency},
        )
        if found.status_code != 200:
            raise rail_error(found, "search")
        return [dict(m) for m in found.json().get("items") or []]

    def _find(self, invoice: Invoice) -> dict[str, Any]:
        """The invoice PayPal already holds under this invoice number."""
        matches = self._search(invoice.number, invoice.currency)
        if len(matches) != 1:
            raise PermanentRailError(
                f"PayPal holds {len(matches)} invoices numbered {invoice.number}",
                code="DUPLICATE_INVOICE_NUMBER",
            )
        return matches[0]

    def _send_invoice(self, invoice_id: str) -> str:
        sent = self._api(
            "POST",
            f"/v2/invoicing/invoices/{invoice_id}/send",
            "send",
            json={"send_to_recipient": True, "send_to_invoicer": False},
        )
        if sent.status_code == 202:
            return "SCHEDULED"
        if sent.status_code == 200:
            return "SENT"
        error = rail_error(sent, "send")
        if isinstance(error, PermanentRailError):
            # A replayed create returns the first (DRAFT) answer even when that invoice
            # was sent since: a refused send is fine once the invoice has left DRAFT.
            current = self._status(invoice_id)
            if current != "DRAFT":
                return current
        raise error

    def _status(self, invoice_id: str) -> str:
        response = self._api("GET", f"/v2/invoicing/invoices/{invoice_id}", "get")
        if response.status_code != 200:
            raise rail_error(response, "get")
        return str(response.json().get("status", ""))

    def status(self, delivery: Delivery) -> str:
        return self._status(delivery.references["invoice"])


@register("paypal")
def create(config: RailConfig) -> PayPalRail:
    return PayPalRail(config)
