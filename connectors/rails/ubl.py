"""Invoices as OASIS UBL 2.1 documents (``Invoice``, or ``CreditNote`` for credit notes).

Pure: the same invoice always gives the same bytes (no processing time inside),
which is what lets the outbox recognise a redelivery by comparing files. Elements
are written in the order the UBL 2.1 schemas require.

Amounts: a credit note's document carries positive amounts (the document type
says it is a credit), so its negative totals are negated. A line without a
quantity and unit price that multiply to its amount is written as quantity ±1 at
the absolute amount, because UBL prices may not be negative.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from streams.domain.catalog import minor_units
from streams.domain.invoice import DocumentKind, Invoice, InvoiceLine

CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
ROOT_NS = {
    "Invoice": "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
    "CreditNote": "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2",
}
RAILYARD_CUSTOMIZATION = "urn:railyard:ubl-2.1:invoice:1"
"""The default ``cbc:CustomizationID``. Railyard's documents carry no tax breakdown or
postal addresses, so they do not claim EN 16931 or Peppol BIS conformance; set the
outbox's ``CUSTOMIZATION_ID`` when the receiving side expects another identifier."""
UUID_NAMESPACE = uuid.UUID("6f1c2c52-7a0e-4a55-9d0b-5c1f0f6a7a11")


@dataclass(frozen=True)
class Supplier:
    name: str
    id: str | None = None


def document_uuid(idempotency_key: str) -> str:
    """The document's ``cbc:UUID``: derived from the invoice's idempotency key."""
    return str(uuid.uuid5(UUID_NAMESPACE, idempotency_key))


def to_ubl(
    invoice: Invoice, supplier: Supplier, customization_id: str = RAILYARD_CUSTOMIZATION
) -> bytes:
    """The UBL 2.1 document for ``invoice``, UTF-8 with an XML declaration."""
    credit = invoice.kind is DocumentKind.CREDIT_NOTE
    root_name = "CreditNote" if credit else "Invoice"
    sign = Decimal(-1) if credit else Decimal(1)
    cur = invoice.currency
    ET.register_namespace("", ROOT_NS[root_name])
    ET.register_namespace("cbc", CBC)
    ET.register_namespace("cac", CAC)
    root = ET.Element(f"{{{ROOT_NS[root_name]}}}{root_name}")

    def cbc(parent: ET.Element, name: str, text: str, **attrs: str) -> ET.Element:
        el = ET.SubElement(parent, f"{{{CBC}}}{name}", attrs)
        el.text = text
        return el

    def cac(parent: ET.Element, name: str) -> ET.Element:
        return ET.SubElement(parent, f"{{{CAC}}}{name}")

    def money(parent: ET.Element, name: str, amount: Decimal) -> None:
        cbc(parent, name, _money(amount, cur), currencyID=cur)

    cbc(root, "UBLVersionID", "2.1")
    cbc(root, "CustomizationID", customization_id)
    cbc(root, "ID", invoice.number)
    cbc(root, "UUID", document_uuid(invoice.idempotency_key))
    cbc(root, "IssueDate", invoice.issued_at.date().isoformat())
    cbc(root, "CreditNoteTypeCode" if credit else "InvoiceTypeCode", "381" if credit else "380")
    cbc(
        root,
        "Note",
        f"Railyard {invoice.kind.value} {invoice.id}, catalog {invoice.catalog_version}",
    )
    cbc(root, "DocumentCurrencyCode", cur)
    cbc(root, "BuyerReference", invoice.account or invoice.customer)
    period = cac(root, "InvoicePeriod")
    cbc(period, "StartDate", invoice.period_start.date().isoformat())
    cbc(period, "EndDate", _last_day(invoice.period_end))

    party = cac(cac(root, "AccountingSupplierParty"), "Party")
    if supplier.id:
        cbc(cac(party, "PartyIdentification"), "ID", supplier.id)
    cbc(cac(party, "PartyName"), "Name", supplier.name)
    party = cac(cac(root, "AccountingCustomerParty"), "Party")
    cbc(cac(party, "PartyIdentification"), "ID", invoice.account or invoice.customer)
    cbc(cac(party, "PartyName"), "Name", invoice.customer_name)

    totals = cac(root, "LegalMonetaryTotal")
    money(totals, "LineExtensionAmount", sign * invoice.subtotal)
    money(totals, "TaxExclusiveAmount", sign * invoice.subtotal)
    money(totals, "TaxInclusiveAmount", sign * invoice.subtotal)
    if invoice.credits_total:
        money(totals, "PrepaidAmount", sign * invoice.credits_total)
    money(totals, "PayableAmount", sign * invoice.total)

    for number, line in enumerate(invoice.lines, 1):
        el = cac(root, "CreditNoteLine" if credit else "InvoiceLine")
        quantity, price = _quantity_and_price(line, sign)
        cbc(el, "ID", str(number))
        cbc(
            el,
            "CreditedQuantity" if credit else "InvoicedQuantity",
            _plain(quantity),
            unitCode="C62",
        )
        money(el, "LineExtensionAmount", sign * line.amount)
        if line.service_start and line.service_end:
            lp = cac(el, "InvoicePeriod")
            cbc(lp, "StartDate", line.service_start.date().isoformat())
            cbc(lp, "EndDate", _last_day(line.service_end))
        item = cac(el, "Item")
        if line.meter or line.dimensions:
            dims = ", ".join(f"{k}={v}" for k, v in line.dimensions)
            cbc(item, "Description", " ".join(p for p in (line.meter or "", dims) if p))
        cbc(item, "Name", line.description)
        cbc(cac(el, "Price"), "PriceAmount", _plain(price), currencyID=cur)

    ET.indent(root)
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True)) + b"\n"


def _quantity_and_price(line: InvoiceLine, sign: Decimal) -> tuple[Decimal, Decimal]:
    amount = sign * line.amount
    q, unit = line.quantity, line.unit_amount
    if q and unit is not None and unit >= 0 and q * unit * sign == amount:
        return q * sign, unit
    return (Decimal(-1) if amount < 0 else Decimal(1)), abs(amount)


def _last_day(end: datetime) -> str:
    """UBL end dates are inclusive; Railyard's period ends are exclusive instants."""
    return (end - timedelta(microseconds=1)).date().isoformat()


def _money(amount: Decimal, currency: str) -> str:
    places = minor_units(currency)
    if places is not None:
        amount = amount.quantize(Decimal(1).scaleb(-places))
    return f"{amount:f}"


def _plain(value: Decimal) -> str:
    """A decimal without exponent or needless trailing zeros (``12``, ``0.000002``)."""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


REQUIRED = (
    "cbc:UBLVersionID",
    "cbc:CustomizationID",
    "cbc:ID",
    "cbc:IssueDate",
    "cbc:DocumentCurrencyCode",
    "cac:AccountingSupplierParty/cac:Party",
    "cac:AccountingCustomerParty/cac:Party",
    "cac:LegalMonetaryTotal/cbc:PayableAmount",
)
NS = {"cbc": CBC, "cac": CAC}


def problems(document: bytes) -> list[str]:
    """Every missing or wrong UBL 2.1 mandatory element; empty when the document is sound."""
    try:
        root = ET.fromstring(document)
    except ET.ParseError as exc:
        return [f"not well-formed XML: {exc}"]
    kind = next((k for k, ns in ROOT_NS.items() if root.tag == f"{{{ns}}}{k}"), None)
    if kind is None:
        return [f"root element {root.tag} is neither a UBL Invoice nor a CreditNote"]
    out = [f"missing {path}" for path in REQUIRED if root.find(path, NS) is None]
    version = root.findtext("cbc:UBLVersionID", namespaces=NS)
    if version is not None and version != "2.1":
        out.append(f"UBLVersionID is {version}, not 2.1")
    type_code, expected = (
        ("cbc:CreditNoteTypeCode", "381")
        if kind == "CreditNote"
        else ("cbc:InvoiceTypeCode", "380")
    )
    if root.findtext(type_code, namespaces=NS) != expected:
        out.append(f"{type_code} must be {expected}")
    payable = root.find("cac:LegalMonetaryTotal/cbc:PayableAmount", NS)
    if payable is not None and not payable.get("currencyID"):
        out.append("PayableAmount has no currencyID")
    line_tag, qty_tag = (
        ("cac:CreditNoteLine", "cbc:CreditedQuantity")
        if kind == "CreditNote"
        else ("cac:InvoiceLine", "cbc:InvoicedQuantity")
    )
    lines = root.findall(line_tag, NS)
    if not lines:
        out.append(f"no {line_tag}")
    for i, line in enumerate(lines, 1):
        for path in (
            "cbc:ID",
            qty_tag,
            "cbc:LineExtensionAmount",
            "cac:Item/cbc:Name",
            "cac:Price/cbc:PriceAmount",
        ):
            if line.find(path, NS) is None:
                out.append(f"{line_tag} {i}: missing {path}")
    return out
