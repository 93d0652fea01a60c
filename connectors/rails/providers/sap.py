"""SAP S/4HANA: a billing document request with its items, over OData V2 with ``pyodata``.

The service (default path ``/sap/opu/odata/sap/API_BILLING_DOCUMENT_REQUEST_SRV``)
is read from its ``$metadata``; ``pyodata`` builds the request from that model,
so a property the service does not declare fails before anything is sent. The
header and its items go in one deep insert (``to_Item``): SAP creates both or
neither.

Idempotency: the idempotency key travels in the extension field
``YY1_RailyardKey_BDR`` (``KEY_FIELD`` to name another; ``PurchaseOrderByCustomer``
holds the human invoice number, and at 35 characters it is too short for the
key). Before creating, the rail looks the key up with ``$filter``; if a create is
refused (the field is unique on the SAP side) it looks again, so two workers
racing on one invoice still leave one document.

Modifying requests carry the CSRF token SAP Gateway requires: fetched with
``x-csrf-token: Fetch`` on the service root (the session keeps its cookie) and
fetched again once if SAP answers ``403`` with ``x-csrf-token: Required``.

Lines map to materials by kind (``MATERIAL_<KIND>`` or ``MATERIAL``); prepaid
credits are one negative item per grant on ``MATERIAL_CREDIT``. Items are
numbered 10, 20, … as SAP numbers them; texts are cut to SAP's 40 characters.

Settings (``RAILYARD_RAIL_SAP_<KEY>``): ``BASE_URL`` (host), ``SERVICE_PATH``,
``USERNAME``, ``PASSWORD`` (secret; a communication user with basic auth),
``SALES_ORGANIZATION``, ``DISTRIBUTION_CHANNEL``, ``DIVISION``, ``INVOICE_TYPE``
(default ``F2``), ``CREDIT_NOTE_TYPE`` (default ``G2``), the materials,
``QUANTITY_UNIT`` (default ``EA``), ``KEY_FIELD``, ``CA_BUNDLE``, ``TIMEOUT``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, ClassVar

import pyodata
import requests
from pyodata.exceptions import HttpError, PyODataException

from connectors.rails.base import Delivery, PermanentRailError, RailError, TransientRailError
from connectors.rails.config import RailConfig
from connectors.rails.http import RailSession, classify
from connectors.rails.registry import register
from streams.domain.invoice import DocumentKind, Invoice

SERVICE_PATH = "/sap/opu/odata/sap/API_BILLING_DOCUMENT_REQUEST_SRV"
ENTITY_SET = "A_BillingDocumentRequest"
KEY_FIELD = "YY1_RailyardKey_BDR"


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


def document(invoice: Invoice, config: RailConfig) -> dict[str, Any]:
    """The billing document request with its items (pure: no I/O)."""
    if not invoice.account:
        raise PermanentRailError(f"SAP: invoice {invoice.id} has no sold-to party (account)")
    unit = config.get("quantity_unit") or "EA"
    currency = invoice.currency
    rows: list[tuple[str, str, str, Any]] = [
        (_material(config, line.kind.value), line.description, f"{line.amount:f}", line)
        for line in invoice.lines
    ]
    rows += [
        (_material(config, "credit"), f"Prepaid credit {c.grant}", f"{-c.amount:f}", None)
        for c in invoice.credits
    ]
    items = []
    for n, (material, text, amount, line) in enumerate(rows, start=1):
        item: dict[str, Any] = {
            "BillingDocumentRequestItem": str(10 * n),
            "Material": material,
            "BillingDocumentRequestItemText": text[:40],
            "NetAmount": amount,
            "TransactionCurrency": currency,
        }
        if line is not None and line.quantity is not None:
            # Three decimals is all the quantity field holds; the amount is what bills.
            item["BillingQuantity"] = f"{line.quantity.quantize(Decimal('0.001')):f}"
            item["BillingQuantityUnit"] = unit
        if line is not None and line.service_start is not None:
            item["ServicesRenderedDate"] = _day(line.service_start)
        items.append(item)
    credit = invoice.kind is DocumentKind.CREDIT_NOTE
    doc_type = config.get("credit_note_type" if credit else "invoice_type") or (
        "G2" if credit else "F2"
    )
    return {
        "BillingDocumentRequestType": doc_type,
        "SalesOrganization": config.require("sales_organization"),
        "DistributionChannel": config.require("distribution_channel"),
        "OrganizationDivision": config.require("division"),
        "SoldToParty": invoice.account,
        "BillingDocumentDate": _day(invoice.issued_at),
        "TransactionCurrency": currency,
        "PurchaseOrderByCustomer": invoice.number[:35],
        config.get("key_field") or KEY_FIELD: invoice.idempotency_key,
        "to_Item": items,
    }


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
    """Creates one billing document request per invoice, found again by its key field."""

    name: ClassVar[str] = "sap"

    def __init__(self, config: RailConfig) -> None:
        self.config = config
        self.url = config.require("base_url").rstrip("/") + (
            config.get("service_path") or SERVICE_PATH
        )
        self.key_field = config.get("key_field") or KEY_FIELD
        for key in ("sales_organization", "distribution_channel", "division"):
            config.require(key)  # fail at start-up, not per invoice
        self._http = RailSession(float(config.get("timeout") or 30), config.get("ca_bundle"))
        password = config.secret("password").get_secret_value()
        self._http.auth = (config.require("username"), password)
        self._service: Any = None

    def __repr__(self) -> str:
        return f"SapRail(url={self.url!r})"

    def _client(self) -> Any:
        """The OData service, built from ``$metadata`` on first use."""
        if self._service is None:
            self._service = self._guard("metadata", lambda: pyodata.Client(self.url, self._http))
        return self._service

    def _guard(self, action: str, call: Any) -> Any:
        try:
            return call()
        except HttpError as exc:
            raise rail_error(exc.response, action) from None
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise TransientRailError(f"SAP unreachable on {action}: {type(exc).__name__}") from None
        except PyODataException as exc:
            raise PermanentRailError(f"SAP {action}: {exc}") from None

    def _fetch_csrf(self) -> None:
        self._http.headers.pop("x-csrf-token", None)
        response = self._guard(
            "csrf", lambda: self._http.get(self.url + "/", headers={"x-csrf-token": "Fetch"})
        )
        if response.status_code >= 300:
            raise rail_error(response, "csrf")
        self._http.headers["x-csrf-token"] = response.headers.get("x-csrf-token", "")

    def _find(self, key: str) -> Any | None:
        entities = getattr(self._client().entity_sets, ENTITY_SET)
        query = entities.get_entities().filter(f"{self.key_field} eq '{key}'")
        found = self._guard(
            "lookup", query.select("BillingDocumentRequest,OverallSDProcessStatus").execute
        )
        return found[0] if found else None

    def _create(self, body: dict[str, Any]) -> Any:
        entities = getattr(self._client().entity_sets, ENTITY_SET)
        if "x-csrf-token" not in self._http.headers:
            self._fetch_csrf()
        for attempt in (1, 2):
            request = self._guard("create", lambda: entities.create_entity().set(**body))
            try:
                return request.execute()
            except HttpError as exc:
                required = exc.response.headers.get("x-csrf-token", "").lower() == "required"
                if exc.response.status_code == 403 and required and attempt == 1:
                    self._fetch_csrf()
                    continue
                raise rail_error(exc.response, "create") from None
            except (requests.Timeout, requests.ConnectionError) as exc:
                raise TransientRailError(
                    f"SAP unreachable on create: {type(exc).__name__}"
                ) from None
            except PyODataException as exc:
                raise PermanentRailError(f"SAP create: {exc}") from None
        raise AssertionError("unreachable")

    def deliver(self, invoice: Invoice) -> Delivery:
        body = document(invoice, self.config)
        existing = self._find(invoice.idempotency_key)
        if existing is None:
            try:
                existing = self._create(body)
            except PermanentRailError:
                # Refused: maybe because another delivery created it since the lookup.
                existing = self._find(invoice.idempotency_key)
                if existing is None:
                    raise
        number = str(existing.BillingDocumentRequest)
        references = {"billing_document_request": number}
        return Delivery(
            self.name, invoice.id, references, status=str(existing.OverallSDProcessStatus or "")
        )

    def status(self, delivery: Delivery) -> str:
        entities = getattr(self._client().entity_sets, ENTITY_SET)
        number = delivery.references["billing_document_request"]
        found = self._guard(
            "read", entities.get_entity(number).select("OverallSDProcessStatus").execute
        )
        return str(found.OverallSDProcessStatus or "")


@register("sap")
def create(config: RailConfig) -> SapRail:
    return SapRail(config)
