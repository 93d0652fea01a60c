"""NetSuite: an invoice (or credit memo) record through SuiteTalk REST ``record/v1``.

Oracle publishes no Python SDK for SuiteTalk REST; this module uses ``requests``
with ``requests-oauthlib`` for token-based authentication (OAuth 1.0a, HMAC-SHA256,
``realm`` = the account id), as Oracle's TBA documentation prescribes.

Idempotency: NetSuite's upsert. The record is written with
``PUT /services/rest/record/v1/invoice/eid:<idempotency_key>``: the external id
names the record, so a second delivery updates the same invoice instead of adding
one (``?replace=item`` makes the lines replace, not append to, the stored ones).
A plain ``POST`` with ``externalId`` in the body would fail on the second try
with a duplicate-key error instead, and ``X-NetSuite-Idempotency-Key`` only
applies to asynchronous requests. ``X-NetSuite-PropertyNameValidation: Error``
turns a misspelt field into an error rather than a silently dropped value.

Lines map to items by kind: ``ITEM_<KIND>`` (``ITEM_USAGE``, ``ITEM_DISCOUNT``,
…) or ``ITEM``; prepaid credits become one negative line per grant on
``ITEM_CREDIT``. The currency is ``CURRENCY_<CODE>`` (NetSuite's internal id of
that currency).

A credit note becomes a ``creditMemo`` with the invoice's amounts as NetSuite
means them, positive (a credit memo already means money back), applied to the
invoice it credits: ``apply.items`` names the invoice (found by its external id,
the invoice's idempotency key) with the amount credited. NetSuite refuses to apply
more than the invoice still owes, and so does the rail before sending: a credit
above ``amountRemaining`` is permanent (``credit_exceeds_invoice``). A redelivered
credit memo is an upsert of the same record, its application replaced.

Settings (``RAILYARD_RAIL_NETSUITE_<KEY>``): ``ACCOUNT_ID`` (e.g. ``1234567_SB1``),
``CONSUMER_KEY``, ``CONSUMER_SECRET`` (secret), ``TOKEN_ID``, ``TOKEN_SECRET``
(secret), ``BASE_URL`` (default ``https://<account>.suitetalk.api.netsuite.com``),
the item and currency ids above, ``TIMEOUT`` seconds.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

import requests
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA256
from requests_oauthlib import OAuth1

from connectors.rails.base import Delivery, PermanentRailError, RailError, TransientRailError
from connectors.rails.config import RailConfig
from connectors.rails.credit import check_within, credit_amount, credited_invoice, is_credit
from connectors.rails.http import classify
from connectors.rails.registry import register
from streams.domain.catalog.currency import minor_units
from streams.domain.invoice import DocumentKind, Invoice

RECORD_PATH = "/services/rest/record/v1"


def record_type(invoice: Invoice) -> str:
    return "creditMemo" if invoice.kind is DocumentKind.CREDIT_NOTE else "invoice"


def _setting(config: RailConfig, key: str, fallback: str | None, what: str) -> str:
    value = config.get(key) or (config.get(fallback) if fallback else None)
    if not value:
        env = f"RAILYARD_RAIL_NETSUITE_{key.upper()}"
        raise PermanentRailError(f"NetSuite: no {what}; set {env}", code="config")
    return value


def record_body(
    invoice: Invoice, config: RailConfig, applies_to: str | None = None
) -> dict[str, Any]:
    """The ``invoice``/``creditMemo`` record for ``invoice`` (pure: no I/O).

    A credit note's amounts are turned positive, and ``applies_to`` (the credited
    invoice's internal id) becomes its ``apply`` line.
    """
    if not invoice.account:
        raise PermanentRailError(f"NetSuite: invoice {invoice.id} has no customer internal id")
    currency = _setting(
        config, f"currency_{invoice.currency.lower()}", None, f"{invoice.currency} currency id"
    )
    sign = -1 if is_credit(invoice) else 1
    lines: list[dict[str, Any]] = []
    for line in invoice.lines:
        item = _setting(
            config, f"item_{line.kind.value}", "item", f"item for {line.kind.value} lines"
        )
        entry: dict[str, Any] = {
            "item": {"id": item},
            "description": line.description[:4000],
            "amount": float(sign * line.amount),
        }
        if line.quantity is not None:
            entry["quantity"] = float(abs(line.quantity))
        lines.append(entry)
    for credit in invoice.credits:
        item = _setting(config, "item_credit", "item", "item for prepaid credit lines")
        entry = {
            "item": {"id": item},
            "description": f"Prepaid credit {credit.grant}",
            "amount": float(-sign * credit.amount),
        }
        lines.append(entry)
    # Amounts are already rounded to the currency; float() keeps them exact to the
    # 15 significant digits JSON numbers carry, far beyond any invoice amount.
    body: dict[str, Any] = {
        "entity": {"id": invoice.account},
        "currency": {"id": currency},
        "tranDate": f"{invoice.issued_at:%Y-%m-%d}",
        "otherRefNum": invoice.number,
        "memo": f"{invoice.number}: {invoice.period_start:%Y-%m-%d} to {invoice.period_end:%Y-%m-%d}",
        "item": {"items": lines},
    }
    if applies_to is not None:
        applied = float(credit_amount(invoice))
        body["apply"] = {"items": [{"doc": {"id": applies_to}, "apply": True, "amount": applied}]}
    return body


def rail_error(response: requests.Response, action: str) -> RailError:
    """NetSuite's error document (RFC 9457 with ``o:errorDetails``) as a Railyard error."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    details = body.get("o:errorDetails") if isinstance(body, dict) else None
    first = (
        details[0] if isinstance(details, list) and details and isinstance(details[0], dict) else {}
    )
    code = str(first.get("o:errorCode") or response.status_code)
    text = (
        first.get("detail")
        or (body.get("title") if isinstance(body, dict) else None)
        or response.reason
    )
    where = f" at {first['o:errorPath']}" if first.get("o:errorPath") else ""
    message = f"NetSuite {response.status_code} {code} on {action}: {text}{where}"
    return classify(message, code, response.status_code, response.headers)


class NetSuiteRail:
    """Upserts one NetSuite transaction record per invoice, keyed by external id."""

    name: ClassVar[str] = "netsuite"

    def __init__(self, config: RailConfig) -> None:
        self.config = config
        account = config.require("account_id")
        host = account.lower().replace("_", "-")
        base = config.get("base_url") or f"https://{host}.suitetalk.api.netsuite.com"
        self.base_url = base.rstrip("/") + RECORD_PATH
        self._timeout = float(config.get("timeout") or 30)
        self._http = requests.Session()
        self._http.auth = OAuth1(
            client_key=config.secret("consumer_key").get_secret_value(),
            client_secret=config.secret("consumer_secret").get_secret_value(),
            resource_owner_key=config.secret("token_id").get_secret_value(),
            resource_owner_secret=config.secret("token_secret").get_secret_value(),
            signature_method=SIGNATURE_HMAC_SHA256,
            realm=account.upper(),
        )

    def __repr__(self) -> str:
        return f"NetSuiteRail(base_url={self.base_url!r})"

    def _call(self, method: str, path: str, action: str, **kwargs: Any) -> requests.Response:
        try:
            response = self._http.request(
                method, self.base_url + path, timeout=self._timeout, **kwargs
            )
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise TransientRailError(
                f"NetSuite unreachable on {action}: {type(exc).__name__}"
            ) from None
        if response.status_code >= 300:
            raise rail_error(response, action)
        return response

    def _find(self, path: str, action: str, fields: str) -> dict[str, Any] | None:
        """The record at ``path``, or None when NetSuite holds none there."""
        try:
            found: dict[str, Any] = self._call(
                "GET", path, action, params={"fields": fields}
            ).json()
        except PermanentRailError as exc:
            if exc.code == "NONEXISTENT_ID":
                return None
            raise
        return found

    def _credited(self, note: Invoice) -> str:
        """The credited invoice's internal id, once the credit is known to fit in it."""
        credited = credited_invoice(note)
        invoice = self._find(
            f"/invoice/eid:{credited.idempotency_key}",
            "read credited invoice",
            "total,amountRemaining",
        )
        if invoice is None:
            raise PermanentRailError(
                f"NetSuite: {note.number} credits {credited.number}, which NetSuite does not "
                f"hold (no invoice with external id {credited.idempotency_key})",
                code="credited_invoice_missing",
            )
        memo = self._find(f"/creditMemo/eid:{note.idempotency_key}", "read", "id")
        if memo is None:  # a redelivery's own application is already in amountRemaining
            # JSON numbers: back to the currency's minor unit before comparing money.
            unit = Decimal(1).scaleb(-(minor_units(note.currency) or 0))
            total = Decimal(str(invoice["total"])).quantize(unit)
            remaining = Decimal(str(invoice["amountRemaining"])).quantize(unit)
            check_within(note, credit_amount(note), total - remaining, total)
        return str(invoice["id"])

    def deliver(self, invoice: Invoice) -> Delivery:
        record = record_type(invoice)
        applies_to = self._credited(invoice) if is_credit(invoice) else None
        body = record_body(invoice, self.config, applies_to)
        headers = {"X-NetSuite-PropertyNameValidation": "Error"}
        path = f"/{record}/eid:{invoice.idempotency_key}"
        replace = "item,apply" if applies_to else "item"
        self._call("PUT", path, "upsert", params={"replace": replace}, json=body, headers=headers)
        stored = self._call("GET", path, "read", params={"fields": "tranId,status"}).json()
        references = {
            "record": record,
            "id": str(stored["id"]),
            "externalId": invoice.idempotency_key,
        }
        if stored.get("tranId"):
            references["tranId"] = str(stored["tranId"])
        if applies_to is not None:
            references["appliesTo"] = applies_to
        return Delivery(self.name, invoice.id, references, status=_status_name(stored))

    def status(self, delivery: Delivery) -> str:
        path = f"/{delivery.references['record']}/{delivery.references['id']}"
        return _status_name(self._call("GET", path, "read", params={"fields": "status"}).json())

    def payment_fields(self, delivery: Delivery) -> dict[str, Any] | None:
        """The invoice's payment fields (``status``, ``total``, ``amountRemaining``,
        ``dueDate``, ``tranDate``) for the poller; None for a credit memo, which is not paid."""
        if delivery.references.get("record") != "invoice":
            return None
        fields = "status,total,amountRemaining,dueDate,tranDate"
        path = f"/invoice/{delivery.references['id']}"
        found: dict[str, Any] = self._call("GET", path, "poll", params={"fields": fields}).json()
        return found


def _status_name(record: dict[str, Any]) -> str:
    status = record.get("status")
    if isinstance(status, dict):
        return str(status.get("refName") or status.get("id") or "")
    return str(status or "")


@register("netsuite")
def create(config: RailConfig) -> NetSuiteRail:
    return NetSuiteRail(config)
