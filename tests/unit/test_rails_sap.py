"""The SAP rail's documents and the stand-in's checks, without a server."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pyodata.v2.model as model
import pytest

from connectors.rails.base import PermanentRailError
from connectors.rails.config import RailConfig
from connectors.rails.providers import sap
from connectors.rails.sandbox.servers import sap as server
from connectors.rails.sandbox.servers.sap_fields import (
    CREDIT_MEMO_SERVICE,
    SALES_ORDER_SERVICE,
    SERVICES,
    edmx,
)
from streams.domain.invoice import DocumentKind
from tests.fixtures.rails.invoices import sample_invoice

CONFIG = RailConfig(
    "sap",
    {
        "sales_organization": "1710",
        "distribution_channel": "10",
        "division": "00",
        "material": "USAGE",
        "material_credit": "CREDIT",
    },
)


def _rates(body: dict[str, Any]) -> list[Decimal]:
    items = [
        Decimal(p["ConditionRateValue"]) for i in body["to_Item"] for p in i["to_PricingElement"]
    ]
    header = [Decimal(p["ConditionRateValue"]) for p in body.get("to_PricingElement", [])]
    return items + header


@pytest.mark.parametrize("currency", ["USD", "JPY", "KWD"])
def test_an_invoice_is_a_sales_order_whose_conditions_add_up_to_its_total(currency: str) -> None:
    invoice = sample_invoice(3, "sap", currency, account="17100001", credits=Decimal(5))
    body = sap.document(invoice, CONFIG)
    assert body["SalesOrderType"] == "OR"
    assert sum(_rates(body), Decimal(0)) == invoice.total
    assert all(
        Decimal(i["to_PricingElement"][0]["ConditionRateValue"]) > 0 for i in body["to_Item"]
    )
    assert all(Decimal(p["ConditionRateValue"]) < 0 for p in body["to_PricingElement"])
    assert server.document_problems(SALES_ORDER_SERVICE, "A_SalesOrder", _json(body)) == []


def test_a_credit_note_is_a_credit_memo_request_with_positive_amounts() -> None:
    note = sample_invoice(3, "sap", "USD", account="17100001", kind=DocumentKind.CREDIT_NOTE)
    body = sap.document(note, CONFIG, "0060000001")
    assert body["CreditMemoRequestType"] == "G2"
    assert body["ReferenceSDDocument"] == "0060000001"
    assert sum(_rates(body), Decimal(0)) == -note.total > 0
    assert all(
        Decimal(i["to_PricingElement"][0]["ConditionRateValue"]) > 0 for i in body["to_Item"]
    )
    assert server.document_problems(CREDIT_MEMO_SERVICE, "A_CreditMemoRequest", _json(body)) == []
    with pytest.raises(PermanentRailError, match="credited sales order"):
        sap.document(note, CONFIG)


def test_the_customer_reference_fits_and_is_the_stand_ins() -> None:
    keys = ["railyard-" + "a" * 40, "railyard-" + "a" * 40 + "-a", "railyard-" + "a" * 40 + "-b"]
    references = [sap.customer_reference(k) for k in keys]
    assert all(len(r) <= 35 for r in references)
    assert len(set(references)) == 3  # suffixed keys are distinct documents
    assert references == [server.customer_reference(k) for k in keys]


def test_the_stand_in_lists_every_problem_of_a_request_sap_would_refuse() -> None:
    invoice = sample_invoice(3, "sap", "JPY", account="17100001")
    body = _json(sap.document(invoice, CONFIG))
    del body["SalesOrganization"]
    body["SoldToParty"] = "X" * 11
    body["to_Item"][0]["to_PricingElement"][0]["ConditionRateValue"] = "10.5"  # JPY has none
    body["to_Item"][1]["NetAmount"] = "1.00"  # computed by SAP
    body["Undeclared"] = "1"
    problems = server.document_problems(SALES_ORDER_SERVICE, "A_SalesOrder", body)
    assert sorted(problems) == sorted(
        [
            "A_SalesOrder: property Undeclared is not declared in A_SalesOrderType",
            "A_SalesOrder/SoldToParty: longer than MaxLength 10",
            "A_SalesOrder: required property SalesOrganization is missing",
            "to_Item[0]/to_PricingElement[0]/ConditionRateValue: JPY has 0 decimals",
            "to_Item[1]: property NetAmount is not creatable",
        ]
    )


@pytest.mark.parametrize("service", list(SERVICES))
def test_the_served_metadata_declares_the_documented_fields(service: str) -> None:
    schema = model.MetadataBuilder(edmx(service)).build()
    for entity in SERVICES[service]:
        declared = schema.entity_set(entity.name).entity_type
        for field in entity.fields:
            prop = declared.proprty(field.name)
            assert prop.typ.name == field.edm
            assert prop.creatable is field.creatable
            if field.max_length is not None:
                assert prop.max_length == field.max_length


def _json(body: dict[str, Any]) -> dict[str, Any]:
    """The body as JSON carries it (pyodata sends Edm.DateTime as /Date(ms)/)."""

    def convert(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        if isinstance(value, list):
            return [convert(v) for v in value]
        if hasattr(value, "timestamp"):
            return f"/Date({int(value.timestamp() * 1000)})/"
        return value

    result: dict[str, Any] = convert(body)
    return result


def test_without_a_sold_to_party_nothing_is_sent() -> None:
    # Port 9 (discard) is closed here: any request would be a TransientRailError instead.
    rail = sap.create(
        RailConfig(
            "sap",
            {**CONFIG.values, "base_url": "http://127.0.0.1:9", "username": "U", "password": "P"},
        )
    )
    invoice = sample_invoice(3, "sap", "USD", account=None)
    with pytest.raises(PermanentRailError, match="no sold-to party"):
        rail.deliver(invoice)
