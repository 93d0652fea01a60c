"""SAP S/4HANA: a sales order per invoice, a credit memo request per credit note (OData V2, ``pyodata``).

Which API, and why. S/4HANA bills what sales documents hold: the billing run turns
a sales order into an invoice (billing type F2, order-related billing) and a credit
memo request into a credit memo (G2). Both are created through standard, released
OData V2 APIs: ``API_SALES_ORDER_SRV`` ("Sales Order (A2X)", communication scenario
SAP_COM_0109) and ``API_CREDIT_MEMO_REQUEST_SRV`` ("Credit Memo Request (A2X)",
SAP_COM_0158), https://api.sap.com/api/API_SALES_ORDER_SRV and
https://api.sap.com/api/API_CREDIT_MEMO_REQUEST_SRV. (``API_BILLING_DOCUMENT_REQUEST_SRV``
is "Read, Reject, Delete" and ``API_BILLING_DOCUMENT_SRV`` "Read, Cancel, GetPDF": neither
creates; external billing document requests are created only over SOAP.)

Pricing goes the way these APIs take it, as pricing elements (conditions): each
line with a positive amount is an item (``to_Item``: material by line kind, 40-character
text, quantity 1 of ``QUANTITY_UNIT``) priced by one manual condition
(``to_PricingElement``: ``PRICE_CONDITION`` [``PPR0``], the amount as
``ConditionRateValue`` per 1 unit); each line that lowers the total (discount, cap,
a negative adjustment) and each prepaid credit is a header condition
``DISCOUNT_CONDITION`` [``HB00``, the absolute header discount] with a negative rate.
Amounts are decimal strings rounded to the currency's minor unit (half-even,
explicitly; the invoice's amounts already are).

A credit note becomes a credit memo request with the note's amounts turned
positive (the document category already means credit): the same items and
conditions as the invoice would have, of type ``CREDIT_MEMO_REQUEST_TYPE`` [``G2``]
with ``SDDocumentReason`` = ``CREDIT_REASON``, and ``ReferenceSDDocument`` the
sales order of the invoice it credits (category ``C``), found by that invoice's
idempotency key. The rail refuses (permanently) a credit note whose invoice is not
in SAP, or one that would credit more than the order's net value minus the credit
memo requests already referencing it.

Idempotency: ``PurchaseOrderByCustomer`` (the customer reference, 35 characters)
carries ``RY-`` and 32 hex digits of the idempotency key's SHA-256. Before
creating, the rail looks it up (with the sold-to party) with ``$filter``; if a
create is refused it looks again, so a redelivery or a racing worker finds the
document instead of creating a second one.

Modifying requests carry the CSRF token SAP Gateway requires: fetched with
``x-csrf-token: Fetch`` on the service root (the session keeps its cookie) and
fetched again once if SAP answers ``403`` with ``x-csrf-token: Required``.

Settings (``RAILYARD_RAIL_SAP_<KEY>``): ``BASE_URL`` (host), ``USERNAME``,
``PASSWORD`` (secret; a communication user with basic auth), ``SALES_ORGANIZATION``,
``DISTRIBUTION_CHANNEL``, ``DIVISION``, ``SALES_ORDER_TYPE`` [``OR``],
``CREDIT_MEMO_REQUEST_TYPE`` [``G2``], ``CREDIT_REASON`` [empty: not sent],
``PRICE_CONDITION``, ``DISCOUNT_CONDITION``, ``MATERIAL`` and ``MATERIAL_<KIND>``,
``QUANTITY_UNIT`` [``EA``], ``SALES_ORDER_SERVICE`` and ``CREDIT_MEMO_SERVICE``
(service paths), ``CA_BUNDLE``, ``TIMEOUT``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, ClassVar

import pyodata
import requests
from pyodata.exceptions import HttpError, PyODataException

from connectors.rails.base import Delivery, PermanentRailError, RailError, TransientRailError
from connectors.rails.config import RailConfig
from connectors.rails.credit import credited_invoice
from connectors.rails.http import RailSession, classify
from connectors.rails.registry import register
from streams.domain.catalog.currency import minor_units
from streams.domain.invoice import DocumentKind, Invoice

SALES_ORDER_SERVICE = "/sap/opu/odata/sap/API_SALES_ORDER_SRV"
CREDIT_MEMO_SERVICE = "/sap/opu/odata/sap/API_CREDIT_MEMO_REQUEST_SRV"
SALES_ORDER = "A_SalesOrder"
CREDIT_MEMO_REQUEST = "A_CreditMemoRequest"
REFERENCE = "PurchaseOrderByCustomer"


def customer_reference(idempotency_key: str) -> str:
    """The idempotency key as it fits ``PurchaseOrderByCustomer`` (35 characters).

    128 bits of the key's SHA-256: keys of any length map to distinct references.
    """
    return f"RY-{hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]}"


def _day(value: date) -> datetime:
    """Edm.DateTime with sap:display-format=Date: midnight UTC of that day."""
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


def _material(config: RailConfig, kind: str) -> str:
    value = config.get(f"material_{kind}") or config.get("material")
    if not value:
        raise PermanentRailError(
            f"SAP: no material for {kind} lines; set RAILYARD_RAIL_SAP_MATERIAL", code="config"
        )
    return value


def _amount(value: Decimal, currency: str) -> str:
    places = minor_units(currency)
    if places is None:
        raise PermanentRailError(f"SAP: unknown currency {currency}", code="currency")
    return f"{value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN):f}"


def document(
    invoice: Invoice, config: RailConfig, credited_order: str | None = None
) -> dict[str, Any]:
    """The sales order (or, for a credit note, credit memo request) for ``invoice``; pure.

    A credit note's amounts are turned positive; ``credited_order`` is the sales
    order of the invoice it credits.
    """
    if not invoice.account:
        raise PermanentRailError(f"SAP: invoice {invoice.id} has no sold-to party (account)")
    credit = invoice.kind is DocumentKind.CREDIT_NOTE
    sign = Decimal(-1) if credit else Decimal(1)
    prefix = "CreditMemoRequest" if credit else "SalesOrder"
    currency = invoice.currency
    unit = config.get("quantity_unit") or "EA"
    price = config.get("price_condition") or "PPR0"
    discount = config.get("discount_condition") or "HB00"
    rows = [(line.kind.value, line.description, sign * line.amount) for line in invoice.lines]
    rows += [("credit", f"Prepaid credit {c.grant}", -sign * c.amount) for c in invoice.credits]
    items: list[dict[str, Any]] = []
    header_conditions: list[dict[str, Any]] = []
    for kind, text, amount in rows:
        if amount > 0:
            number = str(10 * (len(items) + 1))
            items.append(
                {
                    f"{prefix}Item": number,
                    f"{prefix}ItemText": text[:40],
                    "Material": _material(config, kind),
                    "RequestedQuantity": "1",
                    "RequestedQuantityUnit": unit,
                    "to_PricingElement": [
                        {
                            "ConditionType": price,
                            "ConditionRateValue": _amount(amount, currency),
                            "ConditionCurrency": currency,
                            "ConditionQuantity": "1",
                            "ConditionQuantityUnit": unit,
                        }
                    ],
                }
            )
        elif amount < 0:
            header_conditions.append(
                {
                    "ConditionType": discount,
                    "ConditionRateValue": _amount(amount, currency),
                    "ConditionCurrency": currency,
                }
            )
    if not items:
        raise PermanentRailError(
            f"SAP: {invoice.number} has no line that bills anything", code="nothing_to_bill"
        )
    body: dict[str, Any] = {
        f"{prefix}Type": config.get("credit_memo_request_type" if credit else "sales_order_type")
        or ("G2" if credit else "OR"),
        "SalesOrganization": config.require("sales_organization"),
        "DistributionChannel": config.require("distribution_channel"),
        "OrganizationDivision": config.require("division"),
        "SoldToParty": invoice.account,
        REFERENCE: customer_reference(invoice.idempotency_key),
        "CustomerPurchaseOrderDate": _day(invoice.issued_at),
        f"{prefix}Date": _day(invoice.issued_at),
        "PricingDate": _day(invoice.issued_at),
        "TransactionCurrency": currency,
        "to_Item": items,
    }
    if header_conditions:
        body["to_PricingElement"] = header_conditions
    if credit:
        if credited_order is None:
            raise PermanentRailError(f"SAP: {invoice.number} names no credited sales order")
        body["ReferenceSDDocument"] = credited_order
        body["ReferenceSDDocumentCategory"] = "C"
        if reason := config.get("credit_reason"):
            body["SDDocumentReason"] = reason
    return body


def rail_error(response: Any, action: str) -> RailError:
    """SAP Gateway's error document (``error.code``, ``error.message.value``) as a Railyard error."""
    status = int(getattr(response, "status_code", 0) or 0)
    try:
        error = response.json().get("error", {})
    except (ValueError, AttributeError):
        error = {}
    code = str(error.get("code") or status)
    text = (
        (error.get("message") or {}).get("value")
        if isinstance(error.get("message"), dict)
        else error.get("message")
    )
    message = f"SAP {status} {code} on {action}: {text or getattr(response, 'reason', '')}"
    return classify(message, code, status, response.headers)


class SapRail:
    """Creates one sales order per invoice and one credit memo request per credit note."""

    name: ClassVar[str] = "sap"

    def __init__(self, config: RailConfig) -> None:
        self.config = config
        base = config.require("base_url").rstrip("/")
        self.urls = {
            SALES_ORDER: base + (config.get("sales_order_service") or SALES_ORDER_SERVICE),
            CREDIT_MEMO_REQUEST: base + (config.get("credit_memo_service") or CREDIT_MEMO_SERVICE),
        }
        for key in ("sales_organization", "distribution_channel", "division"):
            config.require(key)  # fail at start-up, not per invoice
        self._http = RailSession(float(config.get("timeout") or 30), config.get("ca_bundle"))
        password = config.secret("password").get_secret_value()
        self._http.auth = (config.require("username"), password)
        self._services: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"SapRail(urls={self.urls!r})"

    def _entities(self, entity_set: str) -> Any:
        """The entity set, its service built from ``$metadata`` on first use."""
        if entity_set not in self._services:
            url = self.urls[entity_set]
            self._services[entity_set] = self._guard(
                "metadata", lambda: pyodata.Client(url, self._http)
            )
        return getattr(self._services[entity_set].entity_sets, entity_set)

    def _guard(self, action: str, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except HttpError as exc:
            raise rail_error(exc.response, action) from None
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise TransientRailError(f"SAP unreachable on {action}: {type(exc).__name__}") from None
        except PyODataException as exc:
            raise PermanentRailError(f"SAP {action}: {exc}") from None

    def _fetch_csrf(self, entity_set: str) -> None:
        self._http.headers.pop("x-csrf-token", None)
        url = self.urls[entity_set] + "/"
        response = self._guard(
            "csrf", lambda: self._http.get(url, headers={"x-csrf-token": "Fetch"})
        )
        if response.status_code >= 300:
            raise rail_error(response, "csrf")
        self._http.headers["x-csrf-token"] = response.headers.get("x-csrf-token", "")

    def _find(self, entity_set: str, key: str, sold_to: str) -> Any | None:
        fields = (
            "SalesOrder" if entity_set == SALES_ORDER else "CreditMemoRequest,ReferenceSDDocument"
        )
        query = (
            self._entities(entity_set)
            .get_entities()
            .filter(f"{REFERENCE} eq '{customer_reference(key)}' and SoldToParty eq '{sold_to}'")
            .select(f"{fields},TotalNetAmount,OverallSDProcessStatus")
        )
        found = self._guard("lookup", query.execute)
        return found[0] if found else None

    def _credited(self, order: str) -> Decimal:
        """Net value of the credit memo requests already referencing ``order``."""
        query = (
            self._entities(CREDIT_MEMO_REQUEST)
            .get_entities()
            .filter(f"ReferenceSDDocument eq '{order}'")
            .select("CreditMemoRequest,TotalNetAmount")
        )
        return sum(
            (Decimal(str(r.TotalNetAmount)) for r in self._guard("lookup", query.execute)),
            Decimal(0),
        )

    def _create(self, entity_set: str, body: dict[str, Any]) -> Any:
        entities = self._entities(entity_set)
        if "x-csrf-token" not in self._http.headers:
            self._fetch_csrf(entity_set)
        for attempt in (1, 2):
            request = self._guard("create", lambda: entities.create_entity().set(**body))
            try:
                return request.execute()
            except HttpError as exc:
                required = exc.response.headers.get("x-csrf-token", "").lower() == "required"
                if exc.response.status_code == 403 and required and attempt == 1:
                    self._fetch_csrf(entity_set)
                    continue
                raise rail_error(exc.response, "create") from None
            except (requests.Timeout, requests.ConnectionError) as exc:
                raise TransientRailError(
                    f"SAP unreachable on create: {type(exc).__name__}"
                ) from None
            except PyODataException as exc:
                raise PermanentRailError(f"SAP create: {exc}") from None
        raise AssertionError("unreachable")

    def _credit_body(self, note: Invoice) -> tuple[dict[str, Any], str]:
        invoice = credited_invoice(note)
        number, key = invoice.number, invoice.idempotency_key
        order = self._find(SALES_ORDER, key, note.account or "")
        if order is None:
            raise PermanentRailError(
                f"SAP: {note.number} credits {number}, which has no sales order in SAP",
                code="credited_invoice_missing",
            )
        body = document(note, self.config, str(order.SalesOrder))
        amount = -note.total
        credited = self._credited(str(order.SalesOrder))
        if credited + amount > Decimal(str(order.TotalNetAmount)):
            raise PermanentRailError(
                f"SAP: {note.number} credits {amount} {note.currency} on {number} (sales order "
                f"{order.SalesOrder}, {order.TotalNetAmount} net, {credited} credited already): "
                "that would credit more than the invoice's total",
                code="credit_exceeds_invoice",
            )
        return body, str(order.SalesOrder)

    def deliver(self, invoice: Invoice) -> Delivery:
        if not invoice.account:
            raise PermanentRailError(f"SAP: invoice {invoice.id} has no sold-to party (account)")
        credit = invoice.kind is DocumentKind.CREDIT_NOTE
        entity_set = CREDIT_MEMO_REQUEST if credit else SALES_ORDER
        sold_to = invoice.account
        existing = self._find(entity_set, invoice.idempotency_key, sold_to)
        if existing is None:
            if credit:
                body, _ = self._credit_body(invoice)
            else:
                body = document(invoice, self.config)
            try:
                existing = self._create(entity_set, body)
            except PermanentRailError:
                # Refused: maybe because another delivery created it since the lookup.
                existing = self._find(entity_set, invoice.idempotency_key, sold_to)
                if existing is None:
                    raise
        if credit:
            references = {
                "credit_memo_request": str(existing.CreditMemoRequest),
                "credited_sales_order": str(existing.ReferenceSDDocument),
            }
        else:
            references = {"sales_order": str(existing.SalesOrder)}
        return Delivery(
            self.name, invoice.id, references, status=str(existing.OverallSDProcessStatus or "")
        )

    def status(self, delivery: Delivery) -> str:
        credit = "credit_memo_request" in delivery.references
        if not credit and "sales_order" not in delivery.references:
            raise PermanentRailError(
                f"SAP: delivery of {delivery.invoice_id} names no sales order or credit memo "
                f"request ({sorted(delivery.references)})",
                code="unknown_reference",
            )
        entity_set = CREDIT_MEMO_REQUEST if credit else SALES_ORDER
        number = delivery.references["credit_memo_request" if credit else "sales_order"]
        entities = self._entities(entity_set)
        found = self._guard(
            "read", entities.get_entity(number).select("OverallSDProcessStatus").execute
        )
        return str(found.OverallSDProcessStatus or "")

    def payment_fields(self, delivery: Delivery) -> dict[str, Any] | None:
        """The sales order's ``OverallSDProcessStatus``, ``SalesOrderDate`` and
        ``TotalNetAmount`` for the poller; None for a credit memo request, which is not paid."""
        number = delivery.references.get("sales_order")
        if number is None:
            return None
        names = ("OverallSDProcessStatus", "SalesOrderDate", "TotalNetAmount")
        entities = self._entities(SALES_ORDER)
        found = self._guard("poll", entities.get_entity(number).select(",".join(names)).execute)
        return {name: getattr(found, name) for name in names}


@register("sap")
def create(config: RailConfig) -> SapRail:
    return SapRail(config)
