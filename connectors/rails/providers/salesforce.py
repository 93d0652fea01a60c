"""Salesforce: an ``Invoice__c`` record and its ``InvoiceLine__c`` lines, through ``simple-salesforce``.

Why custom objects: Salesforce's own ``Invoice`` object belongs to Revenue Cloud /
Salesforce Billing, which generates invoices itself from orders and cannot take a
finished invoice from outside; ``Order`` would have Salesforce reprice it. Two
custom objects hold the invoice as issued (fields in ``docs/rails.md``):
``Invoice__c`` (lookup ``Account__c``) and ``InvoiceLine__c`` (master-detail
``Invoice__c``), each with the unique External ID field ``Railyard_Key__c``.

Idempotency: both are upserts by external id. The invoice is
``PATCH /sobjects/Invoice__c/Railyard_Key__c/<idempotency_key>`` (created once,
updated with the same values after that); the lines go in sObject Collections
upserts (``PATCH /composite/sobjects/InvoiceLine__c/Railyard_Key__c``, 200 per
call, all-or-none) keyed ``<idempotency_key>-<line number>``.

A credit note is an ``Invoice__c`` too, ``Kind__c = credit_note``, with positive
amounts (the credit record already means money back) and the lookup
``Credited_Invoice__c`` to the invoice it credits (found by that invoice's
external id). Before writing it the rail sums the credit records already on that
invoice (SOQL) and refuses one that would credit more than the invoice's total.

Authentication: OAuth 2.0 client credentials against ``LOGIN_URL`` (your My
Domain, e.g. ``https://acme.my.salesforce.com``) with ``CLIENT_ID`` and
``CLIENT_SECRET``, renewed once when Salesforce answers ``INVALID_SESSION_ID``; or
a ready ``ACCESS_TOKEN`` with ``INSTANCE_URL``. Other settings
(``RAILYARD_RAIL_SALESFORCE_<KEY>``): ``API_VERSION`` (default 59.0),
``CA_BUNDLE``, ``TIMEOUT``.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from functools import partial
from typing import Any, ClassVar, TypeVar

import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceError

from connectors.rails.base import Delivery, PermanentRailError, RailError, TransientRailError
from connectors.rails.config import RailConfig
from connectors.rails.credit import check_within, credit_amount, credited_invoice, is_credit
from connectors.rails.http import RailSession
from connectors.rails.registry import register
from streams.domain.invoice import Invoice

INVOICE = "Invoice__c"
LINE = "InvoiceLine__c"
KEY = "Railyard_Key__c"
CREDITED = "Credited_Invoice__c"
BATCH = 200
"""sObject Collections take at most 200 records per request."""
TRANSIENT_CODES = frozenset({"REQUEST_LIMIT_EXCEEDED", "UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE"})
T = TypeVar("T")


def invoice_record(invoice: Invoice, credited: str | None = None) -> dict[str, Any]:
    """The ``Invoice__c`` fields (pure; the key is in the URL, not the body).

    A credit note's amounts are turned positive and ``credited`` (the credited
    invoice's record id) fills ``Credited_Invoice__c``.
    """
    if not invoice.account:
        raise PermanentRailError(f"Salesforce: invoice {invoice.id} has no Account id")
    sign = -1 if is_credit(invoice) else 1
    # Amounts are rounded to the currency already; float() keeps them exact to the
    # 15 significant digits a JSON number carries.
    record = {
        "Name": invoice.number,
        "Account__c": invoice.account,
        "Kind__c": invoice.kind.value,
        "Currency__c": invoice.currency,
        "Period_Start__c": f"{invoice.period_start:%Y-%m-%d}",
        "Period_End__c": f"{invoice.period_end:%Y-%m-%d}",
        "Issued_At__c": invoice.issued_at.isoformat(),
        "Subtotal__c": float(sign * invoice.subtotal),
        "Credits__c": float(sign * invoice.credits_total),
        "Total__c": float(sign * invoice.total),
        "Railyard_Invoice_Id__c": invoice.id,
    }
    if credited is not None:
        record[CREDITED] = credited
    return record


def line_records(invoice: Invoice, invoice_record_id: str) -> list[dict[str, Any]]:
    """The ``InvoiceLine__c`` records for an sObject Collections upsert (pure)."""
    sign = -1 if is_credit(invoice) else 1
    records = []
    for n, line in enumerate(invoice.lines, start=1):
        record: dict[str, Any] = {
            "attributes": {"type": LINE},
            KEY: f"{invoice.idempotency_key}-{n:03d}",
            "Invoice__c": invoice_record_id,
            "Line_Number__c": n,
            "Kind__c": line.kind.value,
            "Description__c": line.description[:255],
            "Amount__c": float(sign * line.amount),
        }
        if line.quantity is not None:
            record["Quantity__c"] = float(abs(line.quantity))
        if line.unit_amount is not None:
            record["Unit_Amount__c"] = float(line.unit_amount)
        records.append(record)
    return records


def rail_error(exc: SalesforceError, action: str) -> RailError:
    """Salesforce's error list (``errorCode``, ``message``, ``fields``) as a Railyard error."""
    content = exc.content
    first: dict[str, Any] = (
        content[0] if isinstance(content, list) and content and isinstance(content[0], dict) else {}
    )
    code = str(first.get("errorCode") or exc.status)
    text = first.get("message") or type(exc).__name__
    fields = f" (fields {', '.join(first['fields'])})" if first.get("fields") else ""
    message = f"Salesforce {exc.status} {code} on {action}: {text}{fields}"
    if exc.status == 429 or exc.status >= 500 or code in TRANSIENT_CODES:
        return TransientRailError(message, code=code)
    return PermanentRailError(message, code=code)


class SalesforceRail:
    """Upserts ``Invoice__c`` and its ``InvoiceLine__c`` lines by external id."""

    name: ClassVar[str] = "salesforce"

    def __init__(self, config: RailConfig) -> None:
        self.config = config
        self.version = config.get("api_version") or "59.0"
        self._http = RailSession(float(config.get("timeout") or 30), config.get("ca_bundle"))
        if config.optional_secret("access_token") is None:  # fail at start-up, not per invoice
            for key in ("login_url", "client_id", "client_secret"):
                config.require(key)
        self._sf: Salesforce | None = None

    def __repr__(self) -> str:
        return f"SalesforceRail(version={self.version!r})"

    # -- session -----------------------------------------------------------------

    def _login(self) -> Salesforce:
        token = self.config.optional_secret("access_token")
        if token is not None:
            return Salesforce(
                session_id=token.get_secret_value(),
                instance_url=self.config.require("instance_url"),
                session=self._http,
                version=self.version,
            )
        url = self.config.require("login_url").rstrip("/") + "/services/oauth2/token"
        form = {
            "grant_type": "client_credentials",
            "client_id": self.config.require("client_id"),
            "client_secret": self.config.secret("client_secret").get_secret_value(),
        }
        try:
            response = self._http.post(url, data=form)
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise TransientRailError(
                f"Salesforce unreachable on login: {type(exc).__name__}"
            ) from None
        if response.status_code != 200:
            try:
                body = response.json()
            except ValueError:
                body = {}
            code = str(body.get("error") or response.status_code)
            message = f"Salesforce {response.status_code} {code} on login: {body.get('error_description', '')}"
            if response.status_code >= 500:
                raise TransientRailError(message, code=code)
            raise PermanentRailError(message, code=code)
        grant = response.json()
        return Salesforce(
            session_id=grant["access_token"],
            instance_url=grant["instance_url"],
            session=self._http,
            version=self.version,
        )

    def _call(self, action: str, call: Callable[[Salesforce], T]) -> T:
        """``call`` on a live session, logging in again once if the session expired."""
        for attempt in (1, 2):
            if self._sf is None:
                self._sf = self._login()
            try:
                return call(self._sf)
            except SalesforceError as exc:
                error = rail_error(exc, action)
                renewable = self.config.optional_secret("access_token") is None
                if error.code == "INVALID_SESSION_ID" and renewable and attempt == 1:
                    self._sf = None
                    continue
                raise error from None
            except (requests.Timeout, requests.ConnectionError) as exc:
                raise TransientRailError(
                    f"Salesforce unreachable on {action}: {type(exc).__name__}"
                ) from None
        raise AssertionError("unreachable")

    # -- the rail ----------------------------------------------------------------

    def _credited(self, note: Invoice) -> str:
        """The credited invoice's record id, once the credit is known to fit in its total."""
        credited = credited_invoice(note)
        try:
            invoice = self._call(
                "credited invoice read",
                lambda sf: getattr(sf, INVOICE).get_by_custom_id(KEY, credited.idempotency_key),
            )
        except PermanentRailError as exc:
            if exc.code != "NOT_FOUND":
                raise
            raise PermanentRailError(
                f"Salesforce: {note.number} credits {credited.number}, which Salesforce does not "
                f"hold (no {INVOICE} with {KEY} {credited.idempotency_key})",
                code="credited_invoice_missing",
            ) from None
        record_id = str(invoice["Id"])
        soql = f"SELECT {KEY}, Total__c FROM {INVOICE} WHERE {CREDITED} = '{record_id}'"  # a record id is 15 or 18 letters and digits: nothing to escape
        found = self._call("credits query", lambda sf: sf.query_all(soql))
        others = [r for r in found["records"] if r.get(KEY) != note.idempotency_key]
        already = sum((Decimal(str(r["Total__c"])) for r in others), Decimal(0))
        check_within(note, credit_amount(note), already, Decimal(str(invoice["Total__c"])))
        return record_id

    def deliver(self, invoice: Invoice) -> Delivery:
        credited = self._credited(invoice) if is_credit(invoice) else None
        fields = invoice_record(invoice, credited)
        key = invoice.idempotency_key
        result = self._call(
            "invoice upsert",
            lambda sf: getattr(sf, INVOICE).upsert(f"{KEY}/{key}", fields, raw_response=True),
        )
        answer = result.json() if result.status_code != 204 and result.content else {}
        record_id = (
            answer.get("id")
            or self._call(
                "invoice read", lambda sf: getattr(sf, INVOICE).get_by_custom_id(KEY, key)
            )["Id"]
        )
        lines = line_records(invoice, record_id)
        for start in range(0, len(lines), BATCH):
            batch = {"allOrNone": True, "records": lines[start : start + BATCH]}
            outcome = self._call("lines upsert", partial(_upsert_lines, batch=batch))
            failed = [r for r in outcome or [] if not r.get("success")]
            if failed:
                errors = failed[0].get("errors") or [{}]
                code = str(errors[0].get("statusCode") or "LINE_UPSERT_FAILED")
                raise PermanentRailError(
                    f"Salesforce {code} on lines upsert: {errors[0].get('message', 'no message')}",
                    code=code,
                )
        references = {INVOICE: str(record_id)}
        if credited is not None:
            references[CREDITED] = credited
        return Delivery(self.name, invoice.id, references, status=self._status(str(record_id)))

    def _status(self, record_id: str) -> str:
        record = self._call("invoice read", lambda sf: getattr(sf, INVOICE).get(record_id))
        return str(record.get("Status__c") or "")

    def status(self, delivery: Delivery) -> str:
        return self._status(delivery.references[INVOICE])

    def payment_fields(self, delivery: Delivery) -> dict[str, Any] | None:
        """The ``Invoice__c`` record (``Status__c``, ``Amount_Paid__c``, ``Total__c``,
        ``Issued_At__c``) for the poller; None for a credit record, which is not paid."""
        if CREDITED in delivery.references:
            return None
        record_id = delivery.references[INVOICE]
        found: dict[str, Any] = self._call("poll", lambda sf: getattr(sf, INVOICE).get(record_id))
        return found


def _upsert_lines(sf: Salesforce, batch: dict[str, Any]) -> Any:
    return sf.restful(f"composite/sobjects/{LINE}/{KEY}", method="PATCH", json=batch)


@register("salesforce")
def create(config: RailConfig) -> SalesforceRail:
    return SalesforceRail(config)
