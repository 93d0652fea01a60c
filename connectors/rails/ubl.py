"""Invoices as OASIS UBL 2.1 documents (``Invoice``, or ``CreditNote`` for credit notes).

Pure: the same invoice always gives the same bytes (no processing time inside),
which is what lets the outbox recognise a redelivery by comparing files. Elements
are written in the order the UBL 2.1 schemas require.

With the :class:`Parties` from the catalog's billing profiles the document is an
EN 16931 / Peppol BIS Billing 3.0 invoice: legal names, postal addresses, VAT
identifiers, a VAT breakdown and, for a credit note, a reference to every invoice
it corrects; only then does it carry :data:`EN16931_CUSTOMIZATION` and
:data:`PEPPOL_PROFILE`. Without them (or when the document cannot conform, see
:func:`why_not_compliant`) it is a plain UBL 2.1 document labelled
:data:`RAILYARD_CUSTOMIZATION`, claiming nothing.

Amounts: Railyard's invoice amounts are net of VAT. The VAT is the customer's rate
times the taxable amount (the sum of the lines), rounded half-up to the currency's
minor unit (:meth:`~streams.domain.catalog.Tax.vat`); TaxInclusiveAmount is the net
plus that VAT, PayableAmount that less the prepaid credit. A credit note's document
carries positive amounts (the document type says it is a credit), so its negative
totals are negated. A line without a quantity and unit price that multiply to its
amount is written as quantity ±1 at the absolute amount, because UBL prices may not
be negative.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from streams.domain.catalog import (
    BillingProfile,
    Catalog,
    PostalAddress,
    Seller,
    TaxCategory,
    fits_currency,
    minor_units,
)
from streams.domain.invoice import DocumentKind, Invoice, InvoiceLine, credited_invoices

CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
ROOT_NS = {
    "Invoice": "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
    "CreditNote": "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2",
}
RAILYARD_CUSTOMIZATION = "urn:railyard:ubl-2.1:invoice:1"
"""The ``cbc:CustomizationID`` of a document that is not EN 16931-complete (no parties
from the catalog): it claims no conformance."""
EN16931_CUSTOMIZATION = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
"""Peppol BIS Billing 3.0's CustomizationID, written only on a complete document."""
PEPPOL_PROFILE = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
PAYMENT_TERMS = "Payable on receipt"
"""EN 16931 asks for a due date or payment terms whenever an amount is due (BR-CO-25)."""
EN16931_MAX_DECIMALS = 2
"""EN 16931 allows at most two decimals in document amounts (BR-DEC-*)."""
UUID_NAMESPACE = uuid.UUID("6f1c2c52-7a0e-4a55-9d0b-5c1f0f6a7a11")
_BUYER_VAT = (TaxCategory.REVERSE_CHARGE, TaxCategory.INTRA_COMMUNITY)


def claims_conformance(customization_id: str) -> bool:
    """True when ``customization_id`` labels a document EN 16931 or Peppol conformant."""
    lowered = customization_id.lower()
    return "en16931" in lowered or "peppol" in lowered


@dataclass(frozen=True)
class Supplier:
    name: str
    id: str | None = None


@dataclass(frozen=True)
class Parties:
    """The seller and the buyer's billing profile, from the catalog the invoice was rated with."""

    seller: Seller
    buyer: BillingProfile

    @classmethod
    def of(cls, catalog: Catalog, customer: str) -> Parties | None:
        """The parties of ``customer``'s documents; None when the catalog has no seller or
        does not know the customer."""
        found = catalog.customer(customer)
        if catalog.seller is None or found is None:
            return None
        return cls(catalog.seller, found.billing)


def why_not_compliant(invoice: Invoice, parties: Parties | None) -> list[str]:
    """What keeps ``invoice``'s document from EN 16931; empty when it can conform."""
    if parties is None:
        return ["no seller and buyer billing profile from the catalog"]
    buyer, seller = parties.buyer, parties.seller
    out = [
        f"buyer has no {name}"
        for name, value in (
            ("legal_name", buyer.legal_name),
            ("address", buyer.address),
            ("tax", buyer.tax),
        )
        if value is None
    ]
    tax = buyer.tax
    if tax is not None:
        if tax.category is TaxCategory.NOT_SUBJECT:
            # no VAT identifier may appear (BR-O-02), so the seller needs another (BR-CO-26)
            if seller.company_id is None:
                out.append("seller has no company_id, its only identifier under category O")
        elif seller.vat_id is None:
            out.append(f"seller has no vat_id, which VAT category {tax.category.value} needs")
        if tax.category in _BUYER_VAT and buyer.vat_id is None:
            out.append(f"buyer has no vat_id, which VAT category {tax.category.value} needs")
        amounts = [invoice.subtotal, invoice.credits_total, *(ln.amount for ln in invoice.lines)]
        amounts.append(tax.vat(invoice.subtotal, invoice.currency))
        if not all(fits_currency(a, "EUR") for a in amounts):  # EUR: two decimals
            out.append(
                f"{invoice.currency} amounts need more than {EN16931_MAX_DECIMALS} decimals, "
                "which EN 16931 does not allow"
            )
    return out


def document_uuid(idempotency_key: str) -> str:
    """The document's ``cbc:UUID``: derived from the invoice's idempotency key."""
    return str(uuid.uuid5(UUID_NAMESPACE, idempotency_key))


def to_ubl(
    invoice: Invoice,
    supplier: Supplier,
    customization_id: str = RAILYARD_CUSTOMIZATION,
    parties: Parties | None = None,
) -> bytes:
    """The UBL 2.1 document for ``invoice``, UTF-8 with an XML declaration.

    EN 16931 when ``parties`` make it complete (:func:`why_not_compliant` is empty);
    otherwise plain UBL under ``customization_id``, which then may not claim
    conformance (ValueError).
    """
    compliant = not why_not_compliant(invoice, parties)
    if not compliant and claims_conformance(customization_id):
        raise ValueError(
            f"{invoice.number}: {customization_id} claims EN 16931 conformance, but "
            + "; ".join(why_not_compliant(invoice, parties))
        )
    return _Writer(invoice, supplier, parties if compliant else None).document(
        EN16931_CUSTOMIZATION if compliant else customization_id
    )


class _Writer:
    def __init__(self, invoice: Invoice, supplier: Supplier, parties: Parties | None) -> None:
        self.invoice = invoice
        self.supplier = supplier
        self.parties = parties
        self.credit = invoice.kind is DocumentKind.CREDIT_NOTE
        self.sign = Decimal(-1) if self.credit else Decimal(1)
        self.places = minor_units(invoice.currency)
        if parties is not None and self.places is not None:
            self.places = min(self.places, EN16931_MAX_DECIMALS)

    def cbc(self, parent: ET.Element, name: str, text: str, **attrs: str) -> ET.Element:
        el = ET.SubElement(parent, f"{{{CBC}}}{name}", attrs)
        el.text = text
        return el

    def cac(self, parent: ET.Element, name: str) -> ET.Element:
        return ET.SubElement(parent, f"{{{CAC}}}{name}")

    def money(self, parent: ET.Element, name: str, amount: Decimal) -> None:
        cur = self.invoice.currency
        if self.places is not None:
            amount = amount.quantize(Decimal(1).scaleb(-self.places))
        self.cbc(parent, name, f"{amount:f}", currencyID=cur)

    def document(self, customization_id: str) -> bytes:
        invoice, credit, sign, cbc, cac = self.invoice, self.credit, self.sign, self.cbc, self.cac
        root_name = "CreditNote" if credit else "Invoice"
        ET.register_namespace("", ROOT_NS[root_name])
        ET.register_namespace("cbc", CBC)
        ET.register_namespace("cac", CAC)
        root = ET.Element(f"{{{ROOT_NS[root_name]}}}{root_name}")
        cbc(root, "UBLVersionID", "2.1")
        cbc(root, "CustomizationID", customization_id)
        if self.parties is not None:
            cbc(root, "ProfileID", PEPPOL_PROFILE)
        cbc(root, "ID", invoice.number)
        cbc(root, "UUID", document_uuid(invoice.idempotency_key))
        cbc(root, "IssueDate", invoice.issued_at.date().isoformat())
        cbc(root, "CreditNoteTypeCode" if credit else "InvoiceTypeCode", "381" if credit else "380")
        cbc(
            root,
            "Note",
            f"Railyard {invoice.kind.value} {invoice.id}, catalog {invoice.catalog_version}",
        )
        cbc(root, "DocumentCurrencyCode", invoice.currency)
        cbc(root, "BuyerReference", invoice.account or invoice.customer)
        period = cac(root, "InvoicePeriod")
        cbc(period, "StartDate", invoice.period_start.date().isoformat())
        cbc(period, "EndDate", _last_day(invoice.period_end))
        if self.parties is not None and credit:
            for credited in credited_invoices(invoice):
                ref = cac(cac(root, "BillingReference"), "InvoiceDocumentReference")
                cbc(ref, "ID", credited)
        self.seller(cac(cac(root, "AccountingSupplierParty"), "Party"))
        self.buyer(cac(cac(root, "AccountingCustomerParty"), "Party"))
        vat = Decimal(0)
        if self.parties is not None:
            vat = self.tax(root)
        totals = cac(root, "LegalMonetaryTotal")
        net = sign * invoice.subtotal
        self.money(totals, "LineExtensionAmount", net)
        self.money(totals, "TaxExclusiveAmount", net)
        self.money(totals, "TaxInclusiveAmount", net + vat)
        if invoice.credits_total:
            self.money(totals, "PrepaidAmount", sign * invoice.credits_total)
        self.money(totals, "PayableAmount", net + vat - sign * invoice.credits_total)
        for number, line in enumerate(invoice.lines, 1):
            self.line(root, number, line)
        ET.indent(root)
        return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True)) + b"\n"

    def seller(self, party: ET.Element) -> None:
        cbc, cac = self.cbc, self.cac
        if self.supplier.id:
            cbc(cac(party, "PartyIdentification"), "ID", self.supplier.id)
        if self.parties is None:
            cbc(cac(party, "PartyName"), "Name", self.supplier.name)
            return
        seller = self.parties.seller
        cbc(cac(party, "PartyName"), "Name", self.supplier.name)
        self.address(party, seller.address)
        self.vat_scheme(party, seller.vat_id)
        legal = cac(party, "PartyLegalEntity")
        cbc(legal, "RegistrationName", seller.legal_name)
        if seller.company_id:
            cbc(legal, "CompanyID", seller.company_id)
        contact = seller.contact
        if contact and (contact.name or contact.telephone or contact.email):
            el = cac(party, "Contact")
            for name, value in (
                ("Name", contact.name),
                ("Telephone", contact.telephone),
                ("ElectronicMail", contact.email),
            ):
                if value:
                    cbc(el, name, value)

    def buyer(self, party: ET.Element) -> None:
        invoice, cbc, cac = self.invoice, self.cbc, self.cac
        cbc(cac(party, "PartyIdentification"), "ID", invoice.account or invoice.customer)
        cbc(cac(party, "PartyName"), "Name", invoice.customer_name)
        if self.parties is None:
            return
        buyer = self.parties.buyer
        assert buyer.address is not None and buyer.legal_name is not None
        self.address(party, buyer.address)
        self.vat_scheme(party, buyer.vat_id)
        cbc(cac(party, "PartyLegalEntity"), "RegistrationName", buyer.legal_name)

    def address(self, party: ET.Element, address: PostalAddress) -> None:
        el = self.cac(party, "PostalAddress")
        self.cbc(el, "StreetName", address.street)
        self.cbc(el, "CityName", address.city)
        self.cbc(el, "PostalZone", address.postal_zone)
        self.cbc(self.cac(el, "Country"), "IdentificationCode", address.country)

    def vat_scheme(self, party: ET.Element, vat_id: str | None) -> None:
        """The party's VAT identifier; never under category O (BR-O-02)."""
        assert self.parties is not None and self.parties.buyer.tax is not None
        if vat_id is None or self.parties.buyer.tax.category is TaxCategory.NOT_SUBJECT:
            return
        scheme = self.cac(party, "PartyTaxScheme")
        self.cbc(scheme, "CompanyID", vat_id)
        self.cbc(self.cac(scheme, "TaxScheme"), "ID", "VAT")

    def tax(self, root: ET.Element) -> Decimal:
        """Delivery (intra-community), payment terms and the VAT breakdown; returns the VAT."""
        assert self.parties is not None
        tax, address = self.parties.buyer.tax, self.parties.buyer.address
        assert tax is not None and address is not None
        if tax.category is TaxCategory.INTRA_COMMUNITY:  # BR-IC-12: deliver-to country
            location = self.cac(self.cac(root, "Delivery"), "DeliveryLocation")
            country = self.cac(self.cac(location, "Address"), "Country")
            self.cbc(country, "IdentificationCode", address.country)
        self.cbc(self.cac(root, "PaymentTerms"), "Note", PAYMENT_TERMS)
        taxable = self.sign * self.invoice.subtotal
        vat = tax.vat(taxable, self.invoice.currency)
        total = self.cac(root, "TaxTotal")
        self.money(total, "TaxAmount", vat)
        subtotal = self.cac(total, "TaxSubtotal")
        self.money(subtotal, "TaxableAmount", taxable)
        self.money(subtotal, "TaxAmount", vat)
        self.category(subtotal, "TaxCategory", with_reason=True)
        return vat

    def category(self, parent: ET.Element, name: str, *, with_reason: bool) -> None:
        assert self.parties is not None and self.parties.buyer.tax is not None
        tax = self.parties.buyer.tax
        el = self.cac(parent, name)
        self.cbc(el, "ID", tax.category.value)
        if tax.category is not TaxCategory.NOT_SUBJECT:  # BR-O-05: no rate under O
            self.cbc(el, "Percent", _plain(tax.rate))
        if with_reason and tax.reason:
            self.cbc(el, "TaxExemptionReason", tax.reason)
        self.cbc(self.cac(el, "TaxScheme"), "ID", "VAT")

    def line(self, root: ET.Element, number: int, line: InvoiceLine) -> None:
        cbc, cac, credit = self.cbc, self.cac, self.credit
        el = cac(root, "CreditNoteLine" if credit else "InvoiceLine")
        quantity, price = _quantity_and_price(line, self.sign)
        cbc(el, "ID", str(number))
        cbc(
            el,
            "CreditedQuantity" if credit else "InvoicedQuantity",
            _plain(quantity),
            unitCode="C62",
        )
        self.money(el, "LineExtensionAmount", self.sign * line.amount)
        if line.service_start and line.service_end:
            lp = cac(el, "InvoicePeriod")
            cbc(lp, "StartDate", line.service_start.date().isoformat())
            cbc(lp, "EndDate", _last_day(line.service_end))
        item = cac(el, "Item")
        if line.meter or line.dimensions:
            dims = ", ".join(f"{k}={v}" for k, v in line.dimensions)
            cbc(item, "Description", " ".join(p for p in (line.meter or "", dims) if p))
        cbc(item, "Name", line.description)
        if self.parties is not None:
            self.category(item, "ClassifiedTaxCategory", with_reason=False)
        cbc(cac(el, "Price"), "PriceAmount", _plain(price), currencyID=self.invoice.currency)


def _quantity_and_price(line: InvoiceLine, sign: Decimal) -> tuple[Decimal, Decimal]:
    amount = sign * line.amount
    q, unit = line.quantity, line.unit_amount
    if q and unit is not None and unit >= 0 and q * unit * sign == amount:
        return q * sign, unit
    return (Decimal(-1) if amount < 0 else Decimal(1)), abs(amount)


def _last_day(end: datetime) -> str:
    """UBL end dates are inclusive; Railyard's period ends are exclusive instants."""
    return (end - timedelta(microseconds=1)).date().isoformat()


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
