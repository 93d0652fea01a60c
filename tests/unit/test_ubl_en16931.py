"""EN 16931 e-invoices from the outbox: the UBL 2.1 XSD and the EN 16931 Schematron, no fatal.

The validation material comes from ``shared/einvoice`` (or RAILYARD_EINVOICE, or the
cache): see connectors/rails/einvoice.py. The Schematron is compiled once and cached.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from connectors.files import load_catalog
from connectors.rails.base import TransientRailError
from connectors.rails.config import RailConfig
from connectors.rails.providers.outbox import OutboxRail
from connectors.rails.ubl import (
    EN16931_CUSTOMIZATION,
    NS,
    PEPPOL_PROFILE,
    RAILYARD_CUSTOMIZATION,
    Parties,
    Supplier,
    to_ubl,
    why_not_compliant,
)
from streams.domain.catalog import (
    E_INVOICE_RAILS,
    BillingProfile,
    Catalog,
    PostalAddress,
    Segment,
    Seller,
    Tax,
    TaxCategory,
)
from streams.domain.errors import ConfigError
from streams.domain.invoice import (
    DocumentKind,
    Invoice,
    InvoiceLine,
    LineKind,
    invoice_identity,
)
from streams.domain.rating.assemble import credit_note
from streams.domain.rating.periods import BillingPeriod
from tests.fixtures.einvoice import fatal, schematron_failures
from tests.fixtures.rails.invoices import sample_invoice

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "catalog.example.yaml"
SUPPLIER = Supplier("Railyard Demo GmbH")
SELLER = Seller(
    "Railyard Demo GmbH",
    PostalAddress("Friedrichstraße 68", "Berlin", "10117", "DE"),
    "DE811907980",
    "HRB 123456 B",
)
BUYER_ADDRESS = PostalAddress("Rue de la Loi 1", "Bruxelles", "1000", "BE")


@pytest.fixture(scope="module")
def example() -> Catalog:
    return load_catalog(EXAMPLE)


def buyer(tax: Tax, currency: str = "EUR", vat_id: str | None = "BE0123456749") -> BillingProfile:
    return BillingProfile(
        currency,
        1,
        "outbox",
        Segment.ENTERPRISE,
        "eu-west-1",
        legal_name="Acme Belgium SA",
        address=BUYER_ADDRESS,
        vat_id=vat_id,
        tax=tax,
    )


def amount(root: ET.Element, path: str) -> Decimal:
    text = root.findtext(path, namespaces=NS)
    assert text is not None, path
    return Decimal(text)


def assert_tax_rule(root: ET.Element, invoice: Invoice, tax: Tax) -> None:
    """VAT = rate x net, half-up to the minor unit; inclusive = net + VAT; payable less prepaid."""
    sign = -1 if invoice.kind is DocumentKind.CREDIT_NOTE else 1
    net = sign * invoice.subtotal
    vat = tax.vat(net, invoice.currency)
    assert amount(root, "cac:TaxTotal/cbc:TaxAmount") == vat
    assert amount(root, "cac:TaxTotal/cac:TaxSubtotal/cbc:TaxableAmount") == net
    assert amount(root, "cac:LegalMonetaryTotal/cbc:TaxExclusiveAmount") == net
    assert amount(root, "cac:LegalMonetaryTotal/cbc:TaxInclusiveAmount") == net + vat
    payable = net + vat - sign * invoice.credits_total
    assert amount(root, "cac:LegalMonetaryTotal/cbc:PayableAmount") == payable
    category = root.find("cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory", NS)
    assert category is not None
    assert category.findtext("cbc:ID", namespaces=NS) == tax.category.value
    reason = category.findtext("cbc:TaxExemptionReason", namespaces=NS)
    assert reason == tax.reason


def assert_compliant(document: bytes) -> ET.Element:
    root = ET.fromstring(document)
    assert root.findtext("cbc:CustomizationID", namespaces=NS) == EN16931_CUSTOMIZATION
    assert root.findtext("cbc:ProfileID", namespaces=NS) == PEPPOL_PROFILE
    assert fatal(document) == []
    return root


def correction_note(catalog: Catalog, customer: str, credited: BillingPeriod) -> Invoice:
    """A credit note the way the billing book issues one: a negative correction to a period."""
    found = catalog.customer(customer)
    assert found is not None
    _, number, _ = invoice_identity(customer, credited.start, found.billing.currency)
    line = InvoiceLine(
        LineKind.ADJUSTMENT,
        f"Correction to {number} ({credited.start:%Y-%m-%d} - {credited.end:%Y-%m-%d})",
        Decimal("-120.50"),
        service_start=credited.start,
        service_end=credited.end,
    )
    nxt = BillingPeriod(credited.end, datetime(2026, 6, 15, tzinfo=UTC))
    return credit_note(catalog, customer, nxt, [line])


def test_every_outbox_document_for_the_example_catalog_is_an_en16931_e_invoice(
    example: Catalog, tmp_path: Path
) -> None:
    rail = OutboxRail(
        RailConfig("outbox", {"directory": str(tmp_path)}), {example.version: example}.get
    )
    customers = [c for c in example.customers if c.billing.rail in E_INVOICE_RAILS]
    assert customers, "the example catalog has an outbox customer"
    for n, customer in enumerate(customers):
        base = sample_invoice(
            n, "outbox", customer.billing.currency, customer=customer.key, credits=Decimal("5")
        )
        invoice = replace(base, catalog_version=example.version)
        credited = BillingPeriod(invoice.period_start, invoice.period_end)
        note = correction_note(example, customer.key, credited)
        for document in (invoice, note):
            delivery = rail.deliver(document)
            written = Path(delivery.references["path"]).read_bytes()
            root = assert_compliant(written)
            assert customer.billing.tax is not None
            assert_tax_rule(root, document, customer.billing.tax)
            buyer_name = root.findtext(
                "cac:AccountingCustomerParty/cac:Party/cac:PartyLegalEntity/cbc:RegistrationName",
                namespaces=NS,
            )
            assert buyer_name == customer.billing.legal_name
        note_root = ET.fromstring(Path(rail.deliver(note).references["path"]).read_bytes())
        refs = note_root.findall("cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID", NS)
        assert [r.text for r in refs] == [invoice.number]


CASES = [
    # (category, rate, reason, currency, n): several categories, 0/2/3-decimal currencies
    (TaxCategory.STANDARD, "21", None, "EUR", 1),
    (TaxCategory.STANDARD, "10", None, "JPY", 2),
    (TaxCategory.STANDARD, "10", None, "KWD", 0),
    (TaxCategory.ZERO, "0", None, "EUR", 3),
    (TaxCategory.EXEMPT, "0", "Exempt financial service (Art. 135 VAT Directive)", "EUR", 4),
    (TaxCategory.REVERSE_CHARGE, "0", None, "EUR", 5),
    (TaxCategory.INTRA_COMMUNITY, "0", None, "JPY", 6),
    (TaxCategory.EXPORT, "0", None, "USD", 7),
    (TaxCategory.NOT_SUBJECT, "0", None, "EUR", 8),
]


@pytest.mark.parametrize(("category", "rate", "reason", "currency", "n"), CASES)
@pytest.mark.parametrize("kind", [DocumentKind.INVOICE, DocumentKind.CREDIT_NOTE])
def test_fixed_cases_pass_the_xsd_and_the_en16931_rules(
    category: TaxCategory, rate: str, reason: str | None, currency: str, n: int, kind: DocumentKind
) -> None:
    tax = Tax(category, Decimal(rate), reason)
    invoice = sample_invoice(n, "outbox", currency, kind=kind, credits=Decimal("5"))
    if kind is DocumentKind.CREDIT_NOTE:
        invoice = replace(invoice, credits=(), credits_total=Decimal(0), total=invoice.subtotal)
    parties = Parties(SELLER, buyer(tax, currency))
    assert why_not_compliant(invoice, parties) == []
    root = assert_compliant(to_ubl(invoice, SUPPLIER, parties=parties))
    assert_tax_rule(root, invoice, tax)
    vat_ids = root.findall(".//cac:PartyTaxScheme/cbc:CompanyID", NS)
    if category is TaxCategory.NOT_SUBJECT:
        assert vat_ids == [], "BR-O-02: no VAT identifier under category O"
        assert root.find("cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory/cbc:Percent", NS) is None
    else:
        assert [v.text for v in vat_ids] == ["DE811907980", "BE0123456749"]
    if category is TaxCategory.INTRA_COMMUNITY:
        assert (
            root.findtext(
                "cac:Delivery/cac:DeliveryLocation/cac:Address/cac:Country/cbc:IdentificationCode",
                namespaces=NS,
            )
            == "BE"
        )


def test_the_worked_example_of_the_tax_rule() -> None:
    """docs/rails.md: net 1,000.05 EUR at 19 %, 5.00 prepaid."""
    invoice = sample_invoice(1, "outbox", "EUR", credits=Decimal("5"))
    lines = (InvoiceLine(LineKind.RECURRING, "Platform fee", Decimal("1000.05")),)
    invoice = replace(
        invoice,
        lines=lines,
        subtotal=Decimal("1000.05"),
        total=Decimal("995.05"),
        discount_total=Decimal(0),
    )
    tax = Tax(TaxCategory.STANDARD, Decimal("19"))
    root = assert_compliant(to_ubl(invoice, SUPPLIER, parties=Parties(SELLER, buyer(tax))))
    assert amount(root, "cac:TaxTotal/cbc:TaxAmount") == Decimal("190.01")  # 190.0095, half-up
    assert amount(root, "cac:LegalMonetaryTotal/cbc:TaxInclusiveAmount") == Decimal("1190.06")
    assert amount(root, "cac:LegalMonetaryTotal/cbc:PrepaidAmount") == Decimal("5.00")
    assert amount(root, "cac:LegalMonetaryTotal/cbc:PayableAmount") == Decimal("1185.06")


def test_amounts_finer_than_two_decimals_are_not_labelled_en16931() -> None:
    """EN 16931 allows two decimals; a KWD invoice with fils amounts stays plain UBL."""
    invoice = sample_invoice(1, "outbox", "KWD")  # its discount is 7.074
    parties = Parties(SELLER, buyer(Tax(TaxCategory.INTRA_COMMUNITY), "KWD"))
    assert why_not_compliant(invoice, parties) == [
        "KWD amounts need more than 2 decimals, which EN 16931 does not allow"
    ]
    root = ET.fromstring(to_ubl(invoice, SUPPLIER, parties=parties))
    assert root.findtext("cbc:CustomizationID", namespaces=NS) == RAILYARD_CUSTOMIZATION
    assert root.find("cbc:ProfileID", NS) is None


def test_a_document_missing_a_party_is_not_labelled_compliant() -> None:
    invoice = sample_invoice(1, "outbox", "EUR")
    nameless = replace(buyer(Tax(TaxCategory.STANDARD, Decimal("21"))), legal_name=None)
    for parties in (None, Parties(SELLER, nameless)):
        document = to_ubl(invoice, SUPPLIER, parties=parties)
        root = ET.fromstring(document)
        assert root.findtext("cbc:CustomizationID", namespaces=NS) == RAILYARD_CUSTOMIZATION
        assert root.find("cbc:ProfileID", NS) is None
        with pytest.raises(ValueError, match="claims EN 16931"):
            to_ubl(invoice, SUPPLIER, EN16931_CUSTOMIZATION, parties=parties)
    assert why_not_compliant(invoice, Parties(SELLER, nameless)) == ["buyer has no legal_name"]
    # Labelled by hand, such a document breaks the rules it would claim:
    plain = to_ubl(invoice, SUPPLIER, parties=None)
    ids = {f.id for f in schematron_failures(plain) if f.flag == "fatal"}
    assert {"BR-06", "BR-CO-18"} <= ids


def test_reverse_charge_without_the_buyers_vat_id_is_not_compliant() -> None:
    invoice = sample_invoice(1, "outbox", "EUR")
    parties = Parties(SELLER, buyer(Tax(TaxCategory.REVERSE_CHARGE), vat_id=None))
    assert why_not_compliant(invoice, parties) == [
        "buyer has no vat_id, which VAT category AE needs"
    ]


def test_the_outbox_refuses_a_customization_id_claiming_conformance(tmp_path: Path) -> None:
    config = {"directory": str(tmp_path), "customization_id": EN16931_CUSTOMIZATION}
    with pytest.raises(ConfigError, match="claims EN 16931 or Peppol"):
        OutboxRail(RailConfig("outbox", config))


def test_a_catalog_version_not_yet_on_the_topic_is_transient(
    example: Catalog, tmp_path: Path
) -> None:
    rail = OutboxRail(RailConfig("outbox", {"directory": str(tmp_path)}), {}.get)
    invoice = replace(sample_invoice(1, "outbox", "EUR"), catalog_version=example.version)
    with pytest.raises(TransientRailError, match="not on the catalog topic"):
        rail.deliver(invoice)
    assert list(tmp_path.iterdir()) == []


def test_an_invoice_naming_no_published_catalog_is_written_as_plain_ubl(tmp_path: Path) -> None:
    def never(version: str) -> Catalog | None:
        raise AssertionError(f"looked up {version}")

    rail = OutboxRail(RailConfig("outbox", {"directory": str(tmp_path)}), never)
    delivery = rail.deliver(sample_invoice(1, "outbox", "EUR"))  # catalog_version "test"
    root = ET.fromstring(Path(delivery.references["path"]).read_bytes())
    assert root.findtext("cbc:CustomizationID", namespaces=NS) == RAILYARD_CUSTOMIZATION


def test_the_validators_catch_a_broken_document() -> None:
    """Guards the guard: an element out of the schema's order and a missing VAT breakdown."""
    tax = Tax(TaxCategory.STANDARD, Decimal("21"))
    document = to_ubl(
        sample_invoice(1, "outbox", "EUR"), SUPPLIER, parties=Parties(SELLER, buyer(tax))
    )
    root = ET.fromstring(document)
    total = root.find("cac:TaxTotal", NS)
    assert total is not None
    root.remove(total)
    broken = ET.tostring(root, encoding="utf-8")
    assert any("BR-CO-18" in f for f in fatal(broken))
    moved = ET.fromstring(document)
    note = moved.find("cbc:Note", NS)
    assert note is not None
    moved.remove(note)
    moved.append(note)  # after the lines: not where UBL 2.1 puts it
    errors = fatal(ET.tostring(moved, encoding="utf-8"))
    assert errors and "Note" in errors[0]


def test_category_o_needs_the_sellers_company_id() -> None:
    """Under O no VAT id may appear (BR-O-02), so the seller is identified otherwise (BR-CO-26)."""
    invoice = sample_invoice(1, "outbox", "EUR")
    parties = Parties(replace(SELLER, company_id=None), buyer(Tax(TaxCategory.NOT_SUBJECT)))
    assert why_not_compliant(invoice, parties) == [
        "seller has no company_id, its only identifier under category O"
    ]
