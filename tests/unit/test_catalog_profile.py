"""The billing profile: the catalog's seller, each customer's buyer details, VAT, and per-rail fields."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from connectors.files import load_catalog
from streams.domain.catalog import (
    Catalog,
    PostalAddress,
    Tax,
    TaxCategory,
    Webhook,
    parse_catalog,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "catalog.example.yaml"

SELLER = """seller:
  legal_name: Seller GmbH
  address: {street: Hauptstr. 1, city: Berlin, postal_zone: "10115", country: DE}
  vat_id: DE123456789
"""


def doc(billing_extra: str, seller: str = SELLER, rail: str = "outbox") -> str:
    return (
        SELLER_PLACEHOLDER.replace("{seller}", seller)
        .replace("{rail}", rail)
        .replace("{extra}", billing_extra)
    )


SELLER_PLACEHOLDER = """{seller}
customers:
  - key: acme
    billing:
      currency: EUR
      rail: {rail}
      segment: enterprise
      region: eu-west-1
{extra}
"""

BUYER = """      legal_name: Acme B.V.
      address: {street: Damrak 1, city: Amsterdam, postal_zone: 1012 LG, country: NL}
      vat_id: NL123456789B01
"""


def problems(text: str) -> list[str]:
    catalog, found = parse_catalog(text, "cat.yaml")
    assert (catalog is None) == bool(found)
    return [f"{p.path}: {p.message}" for p in found]


def test_the_example_catalog_carries_a_seller_and_the_outbox_customers_profile() -> None:
    catalog = load_catalog(EXAMPLE)
    assert catalog.seller is not None
    assert catalog.seller.vat_id == "DE811907980"
    assert catalog.seller.address.country == "DE"
    aperture = catalog.customer("aperture-ai")
    assert aperture is not None
    billing = aperture.billing
    assert billing.legal_name == "Aperture AI GmbH"
    assert billing.tax == Tax(TaxCategory.STANDARD, Decimal("19"))
    cyberdyne = catalog.customer("cyberdyne-analytics")
    assert cyberdyne is not None and cyberdyne.billing.webhook == Webhook(
        "https://billing.cyberdyne.example/railyard", "env:RAILYARD_WEBHOOK_SECRET_CYBERDYNE"
    )
    vandelay = catalog.customer("vandelay-analytics")
    assert vandelay is not None and vandelay.billing.payment_reference == "8415718415172200"


def test_the_profile_survives_the_catalog_json_exactly() -> None:
    catalog = load_catalog(EXAMPLE)
    again = Catalog.from_json(catalog.to_json())
    assert again == catalog
    assert again.version == catalog.version
    assert again.seller == catalog.seller


def test_a_catalog_without_profiles_writes_none_of_their_fields() -> None:
    """Absent fields are not written, so catalogs applied before keep their version."""
    catalog, found = parse_catalog(doc("", seller="", rail="sap"), "cat.yaml")
    assert found == [] and catalog is not None
    text = catalog.to_json()
    for name in ("seller", "legal_name", "vat_id", "tax", "webhook", "payment_reference"):
        assert f'"{name}"' not in text


def test_a_complete_outbox_customer_parses() -> None:
    catalog, found = parse_catalog(doc(BUYER + "      tax: {category: K}\n"), "cat.yaml")
    assert found == [] and catalog is not None
    billing = catalog.customers[0].billing
    assert billing.address == PostalAddress("Damrak 1", "Amsterdam", "1012 LG", "NL")
    assert billing.tax == Tax(TaxCategory.INTRA_COMMUNITY)
    assert billing.tax.reason == "Intra-community supply"


def test_an_outbox_customer_needs_legal_name_address_and_tax() -> None:
    assert problems(doc("")) == [
        "customers[0].billing.legal_name: required",
        "customers[0].billing.address: required: a mapping with street, city, postal_zone, country",
        "customers[0].billing.tax: required: a mapping with category (S, Z, E, AE, K, G or O) "
        "and rate",
    ]


def test_other_rails_need_none_of_it() -> None:
    assert problems(doc("", seller="", rail="sap")) == []


def test_an_outbox_customer_needs_a_seller() -> None:
    found = problems(doc(BUYER + "      tax: {category: S, rate: '21'}\n", seller=""))
    assert found == [
        "seller: required: customers[0].billing (line 4) bills on the outbox rail (e-invoices)"
    ]


@pytest.mark.parametrize(
    ("tax", "expected"),
    [
        ("{category: S}", "customers[0].billing.tax.rate: required"),
        (
            "{category: S, rate: '0'}",
            "customers[0].billing.tax.rate: a standard rate must be above 0 and below 100, got 0",
        ),
        (
            "{category: Z, rate: '7'}",
            "customers[0].billing.tax.rate: category Z has no VAT: the rate must be 0",
        ),
        (
            "{category: E}",
            "customers[0].billing.tax.exemption_reason: required: an exempt supply "
            "states why (BR-E-10)",
        ),
        (
            "{category: X}",
            "customers[0].billing.tax.category: 'X' is not one of S, Z, E, AE, K, G, O",
        ),
    ],
)
def test_tax_is_validated(tax: str, expected: str) -> None:
    found = problems(doc(BUYER + f"      tax: {tax}\n"))
    assert found == [expected]


def test_reverse_charge_needs_the_buyers_vat_id() -> None:
    buyer = BUYER.replace("      vat_id: NL123456789B01\n", "")
    assert problems(doc(buyer + "      tax: {category: AE}\n")) == [
        "customers[0].billing.vat_id: required: tax category AE names the buyer's VAT identifier"
    ]


def test_addresses_and_vat_ids_carry_country_codes() -> None:
    bad = BUYER.replace("country: NL", "country: Netherlands").replace(
        "NL123456789B01", "123456789"
    )
    assert problems(doc(bad + "      tax: {category: K}\n")) == [
        "customers[0].billing.address.country: 'Netherlands' must be an ISO 3166-1 alpha-2 "
        "code such as DE",
        "customers[0].billing.vat_id: '123456789' must start with a two-letter country code, "
        "such as DE123456789",
    ]


def test_a_webhook_names_where_its_secret_is_kept_never_the_secret() -> None:
    extra = '      webhook: {url: "https://x.example/hook", secret_ref: "whsec_live_123"}\n'
    found = problems(doc(extra, seller="", rail="webhook"))
    assert found == [
        "customers[0].billing.webhook.secret_ref: must name where the secret is kept, "
        "env:VARIABLE or file:/path; never the secret itself"
    ]
    ok = '      webhook: {url: "https://x.example/hook", secret_ref: "file:/run/secrets/hook"}\n'
    assert problems(doc(ok, seller="", rail="webhook")) == []


def test_vat_is_the_rate_times_the_amount_rounded_half_up_to_the_minor_unit() -> None:
    standard = Tax(TaxCategory.STANDARD, Decimal("19"))
    assert standard.vat(Decimal("10.05"), "EUR") == Decimal("1.91")  # 1.9095
    assert Tax(TaxCategory.STANDARD, Decimal("5")).vat(Decimal("0.10"), "EUR") == Decimal(
        "0.01"
    )  # 0.005: half-up, where half-even would give 0.00
    assert Tax(TaxCategory.STANDARD, Decimal("10")).vat(Decimal("1005"), "JPY") == Decimal("101")
    assert Tax(TaxCategory.STANDARD, Decimal("5")).vat(Decimal("1.237"), "KWD") == Decimal(
        "0.062"
    )  # 0.06185
    assert Tax(TaxCategory.STANDARD, Decimal("19")).vat(Decimal("-10.05"), "EUR") == Decimal(
        "-1.91"
    )
    assert Tax(TaxCategory.REVERSE_CHARGE).vat(Decimal("1000.00"), "EUR") == Decimal("0.00")


def test_category_o_needs_the_sellers_trade_register_number() -> None:
    found = problems(doc(BUYER + "      tax: {category: O}\n"))
    assert found == [
        "seller.company_id: required: customers[0].billing (line 8) is not subject to VAT (O), "
        "where the seller's VAT id may not appear, so its trade register number identifies it"
    ]
    with_id = SELLER + "  company_id: HRB 1 B\n"
    assert problems(doc(BUYER + "      tax: {category: O}\n", seller=with_id)) == []
