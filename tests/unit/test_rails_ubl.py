"""UBL 2.1 documents and the outbox: mandatory elements, amounts, atomic and idempotent files."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path

import pytest

from connectors.rails.base import PermanentRailError, TransientRailError
from connectors.rails.config import RailConfig
from connectors.rails.providers.outbox import OutboxRail, file_name
from connectors.rails.ubl import NS, Supplier, document_uuid, problems, to_ubl
from streams.domain.invoice import DocumentKind
from tests.fixtures.rails.invoices import sample_invoice

INVOICE_NS = "{urn:oasis:names:specification:ubl:schema:xsd:Invoice-2}"
CREDIT_NS = "{urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2}"
SUPPLIER = Supplier("Railyard Test Ltd", "DE123456789")


def parse(document: bytes) -> ET.Element:
    return ET.fromstring(document)


def test_invoice_has_every_mandatory_element() -> None:
    invoice = sample_invoice(1, "outbox", credits=Decimal("5"))
    root = parse(to_ubl(invoice, SUPPLIER))
    assert root.tag == f"{INVOICE_NS}Invoice"
    assert root.findtext("cbc:UBLVersionID", namespaces=NS) == "2.1"
    assert root.findtext("cbc:CustomizationID", namespaces=NS)
    assert root.findtext("cbc:ID", namespaces=NS) == invoice.number
    assert root.findtext("cbc:UUID", namespaces=NS) == document_uuid(invoice.idempotency_key)
    assert root.findtext("cbc:IssueDate", namespaces=NS) == invoice.issued_at.date().isoformat()
    assert root.findtext("cbc:InvoiceTypeCode", namespaces=NS) == "380"
    assert root.findtext("cbc:DocumentCurrencyCode", namespaces=NS) == "USD"
    supplier = root.find("cac:AccountingSupplierParty/cac:Party", NS)
    assert supplier is not None
    assert supplier.findtext("cac:PartyName/cbc:Name", namespaces=NS) == SUPPLIER.name
    customer = root.find("cac:AccountingCustomerParty/cac:Party", NS)
    assert customer is not None
    assert customer.findtext("cac:PartyName/cbc:Name", namespaces=NS) == invoice.customer_name
    payable = root.find("cac:LegalMonetaryTotal/cbc:PayableAmount", NS)
    assert payable is not None and payable.get("currencyID") == "USD"
    assert Decimal(payable.text or "") == invoice.total
    prepaid = root.findtext("cac:LegalMonetaryTotal/cbc:PrepaidAmount", namespaces=NS)
    assert Decimal(prepaid or "") == Decimal("5.00")
    lines = root.findall("cac:InvoiceLine", NS)
    assert len(lines) == len(invoice.lines)
    for number, (el, line) in enumerate(zip(lines, invoice.lines, strict=True), 1):
        assert el.findtext("cbc:ID", namespaces=NS) == str(number)
        quantity = Decimal(el.findtext("cbc:InvoicedQuantity", namespaces=NS) or "")
        amount = el.find("cbc:LineExtensionAmount", NS)
        assert amount is not None and amount.get("currencyID") == "USD"
        assert Decimal(amount.text or "") == line.amount
        assert el.findtext("cac:Item/cbc:Name", namespaces=NS) == line.description
        price = Decimal(el.findtext("cac:Price/cbc:PriceAmount", namespaces=NS) or "")
        assert price >= 0, "UBL prices are never negative"
        assert quantity * price == line.amount
    assert problems(to_ubl(invoice, SUPPLIER)) == []


def test_credit_note_is_a_creditnote_document_with_positive_amounts() -> None:
    note = sample_invoice(2, "outbox", "JPY", kind=DocumentKind.CREDIT_NOTE)
    assert note.total < 0
    root = parse(to_ubl(note, SUPPLIER))
    assert root.tag == f"{CREDIT_NS}CreditNote"
    assert root.findtext("cbc:CreditNoteTypeCode", namespaces=NS) == "381"
    assert root.find("cbc:InvoiceTypeCode", NS) is None
    payable = root.findtext("cac:LegalMonetaryTotal/cbc:PayableAmount", namespaces=NS)
    assert payable == str(-note.total) and "." not in (payable or ""), "JPY has no minor unit"
    lines = root.findall("cac:CreditNoteLine", NS)
    assert len(lines) == len(note.lines)
    assert all(el.find("cbc:CreditedQuantity", NS) is not None for el in lines)
    assert problems(to_ubl(note, SUPPLIER)) == []


def test_end_dates_are_inclusive_days() -> None:
    invoice = sample_invoice(0, "outbox")  # the period ends at midnight, exclusive
    root = parse(to_ubl(invoice, SUPPLIER))
    assert root.findtext("cac:InvoicePeriod/cbc:EndDate", namespaces=NS) == "2025-01-31"


def test_the_same_invoice_gives_the_same_bytes() -> None:
    assert to_ubl(sample_invoice(3, "outbox"), SUPPLIER) == to_ubl(
        sample_invoice(3, "outbox"), SUPPLIER
    )


@pytest.mark.parametrize(
    ("remove", "problem"),
    [
        ("cbc:UBLVersionID", "missing cbc:UBLVersionID"),
        ("cbc:CustomizationID", "missing cbc:CustomizationID"),
        ("cbc:IssueDate", "missing cbc:IssueDate"),
        ("cbc:DocumentCurrencyCode", "missing cbc:DocumentCurrencyCode"),
        ("cac:AccountingCustomerParty", "missing cac:AccountingCustomerParty/cac:Party"),
        ("cac:LegalMonetaryTotal", "missing cac:LegalMonetaryTotal/cbc:PayableAmount"),
    ],
)
def test_problems_name_a_missing_mandatory_element(remove: str, problem: str) -> None:
    root = parse(to_ubl(sample_invoice(1, "outbox"), SUPPLIER))
    child = root.find(remove, NS)
    assert child is not None
    root.remove(child)
    assert problem in problems(ET.tostring(root))


def test_problems_check_lines_type_code_and_well_formedness() -> None:
    root = parse(to_ubl(sample_invoice(1, "outbox"), SUPPLIER))
    line = root.find("cac:InvoiceLine", NS)
    assert line is not None
    price = line.find("cac:Price", NS)
    assert price is not None
    line.remove(price)
    type_code = root.find("cbc:InvoiceTypeCode", NS)
    assert type_code is not None
    type_code.text = "384"
    found = problems(ET.tostring(root))
    assert "cac:InvoiceLine 1: missing cac:Price/cbc:PriceAmount" in found
    assert "cbc:InvoiceTypeCode must be 380" in found
    assert problems(b"<Invoice>") == ["not well-formed XML: no element found: line 1, column 9"]


def outbox(directory: Path) -> OutboxRail:
    return OutboxRail(RailConfig("outbox", {"directory": str(directory)}))


def test_outbox_writes_one_file_atomically_and_redelivery_finds_it(tmp_path: Path) -> None:
    invoice = sample_invoice(4, "outbox")
    first = outbox(tmp_path).deliver(invoice)
    again = outbox(tmp_path).deliver(invoice)
    assert (first.status, again.status) == ("written", "exists")
    assert [p.name for p in tmp_path.iterdir()] == [file_name(invoice.number)], "no temp files left"
    assert first.references == again.references
    assert problems((tmp_path / file_name(invoice.number)).read_bytes()) == []


def test_outbox_never_overwrites_a_different_document(tmp_path: Path) -> None:
    invoice = sample_invoice(4, "outbox")
    (tmp_path / file_name(invoice.number)).write_text("<Invoice/>")
    with pytest.raises(PermanentRailError) as err:
        outbox(tmp_path).deliver(invoice)
    assert err.value.code == "conflict"
    assert (tmp_path / file_name(invoice.number)).read_text() == "<Invoice/>"


def test_a_missing_outbox_directory_is_transient_and_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "share"
    with pytest.raises(TransientRailError) as err:
        outbox(missing).deliver(sample_invoice(1, "outbox"))
    assert err.value.code == "ENOENT"
    assert not missing.exists()


def test_file_names_keep_only_safe_characters() -> None:
    assert file_name("INV-20250101-ABCD") == "INV-20250101-ABCD.xml"
    assert file_name("../../etc/passwd") == "_.._etc_passwd.xml"
    with pytest.raises(PermanentRailError):
        file_name("...")
