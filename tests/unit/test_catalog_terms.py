"""Catalog terms for rating: included units, discounts, spend caps, credits, rounding."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from streams.domain.catalog import (
    DEFAULT_CREDIT_THRESHOLDS,
    Catalog,
    Contract,
    CreditGrant,
    DimensionPrice,
    Plan,
    Rounding,
    UnitPrice,
)
from tests.unit.test_catalog import edited, find, line_of, parsed, problems_of

GRANT = '{key: promo, amount: "25.00", currency: USD, effective_from: 2026-11-01T00:00:00Z}'
WITH_GRANT = edited(
    "segment: self_service, region: us-east-1}\n",
    f"segment: self_service, region: us-east-1}}\n    credits:\n      - {GRANT}\n",
)
TERMS = edited(
    '      - {meter: api_calls, model: per_unit, unit_amount: "0.001"}\n',
    '      - {meter: api_calls, model: per_unit, unit_amount: "0.001", included: 1000}\n'
    '    discount_percent: "12.5"\n'
    '    maximum_spend: "5000.00"\n',
    WITH_GRANT,
)
FULL = edited(
    'contract: {minimum_commitment: "1000.00"}',
    'contract: {minimum_commitment: "1000.00", discount_percent: 10, maximum_spend: "2000.00"}',
    "rounding: half_up\ncredit_thresholds: [25, 75, 100]\n" + TERMS,
)


def test_terms_parse_to_their_fields() -> None:
    catalog = parsed(FULL)
    assert catalog.rounding is Rounding.HALF_UP
    assert catalog.credit_thresholds == (25, 75, 100)
    plan = catalog.plan("pro-usd")
    assert plan == Plan(
        "pro-usd",
        "USD",
        (UnitPrice("api_calls", "api_calls", Decimal("0.001"), Decimal(1000)),),
        "",
        Decimal("12.5"),
        Decimal("5000.00"),
    )
    sub = catalog.subscription_for("globex", datetime(2026, 6, 1, tzinfo=UTC))
    assert sub is not None and sub.contract == Contract(
        None, Decimal("1000.00"), (), Decimal(10), Decimal("2000.00")
    )
    acme = catalog.customer("acme")
    assert acme is not None and acme.credits == (
        CreditGrant("promo", Decimal("25.00"), "USD", datetime(2026, 11, 1, tzinfo=UTC)),
    )
    assert acme.credits[0].priority == 100 and acme.credits[0].expires_at is None


def test_defaults_when_nothing_is_said() -> None:
    catalog = parsed()
    assert catalog.rounding is Rounding.HALF_EVEN
    assert catalog.credit_thresholds == DEFAULT_CREDIT_THRESHOLDS
    plan = catalog.plan("pro-usd")
    assert plan is not None and plan.discount_percent is None and plan.maximum_spend is None
    price = plan.rate_card[0]
    assert isinstance(price, UnitPrice) and price.included == 0


def test_a_dimension_price_may_include_units() -> None:
    text = edited(
        "{meter: ai_tokens, model: per_unit, unit_amount: 0.000002}",
        "{meter: ai_tokens, model: dimension, included: 500, prices: [{when: {model: a}, unit_amount: 1}]}",
    )
    plan = parsed(text).plan("ent-eur")
    assert plan is not None and isinstance(plan.rate_card[0], DimensionPrice)
    assert plan.rate_card[0].included == 500


# (old, new, path, message[, needle]) applied to WITH_GRANT; line where `new` (or needle) starts.
CASES: dict[str, tuple[str, ...]] = {
    "included on a flat fee": (
        '{meter: api_calls, model: per_unit, unit_amount: "0.001"}',
        '{key: fee, model: flat, amount: "5.00", included: 10}',
        "plans[0].rate_card[0].included",
        "unknown field; expected one of key, meter, model, amount",
    ),
    "negative included": (
        'unit_amount: "0.001"}',
        'unit_amount: "0.001", included: -5}',
        "plans[0].rate_card[0].included",
        "must not be negative",
    ),
    "included finer than a quantity": (
        'unit_amount: "0.001"}',
        'unit_amount: "0.001", included: "0.0000000001"}',
        "plans[0].rate_card[0].included",
        "0.0000000001 is finer than a metered quantity (9 places)",
    ),
    "discount above 100": (
        "  - key: ent-eur\n",
        "  - key: ent-eur\n    discount_percent: 101\n",
        "plans[1].discount_percent",
        "must be within 0..100, got 101",
        "discount_percent: 101",
    ),
    "discount not a number": (
        'contract: {minimum_commitment: "1000.00"}',
        'contract: {minimum_commitment: "1000.00", discount_percent: lots}',
        "subscriptions[1].contract.discount_percent",
        "'lots' is not a decimal number",
    ),
    "maximum spend finer than the currency": (
        "  - key: ent-eur\n",
        '  - key: ent-eur\n    maximum_spend: "10.001"\n',
        "plans[1].maximum_spend",
        "10.001 has more decimal places than EUR allows (2)",
        "maximum_spend",
    ),
    "maximum spend of zero": (
        "  - key: ent-eur\n",
        "  - key: ent-eur\n    maximum_spend: 0\n",
        "plans[1].maximum_spend",
        "must be greater than 0, got 0",
        "maximum_spend",
    ),
    "commitment above the contract's cap": (
        'contract: {minimum_commitment: "1000.00"}',
        'contract: {minimum_commitment: "1000.00", maximum_spend: "999.99"}',
        "subscriptions[1].contract.minimum_commitment",
        "1000.00 is above the maximum spend of 999.99",
    ),
    "commitment above the plan's cap": (
        "  - key: ent-eur\n",
        '  - key: ent-eur\n    maximum_spend: "500.00"\n',
        "subscriptions[1].contract.minimum_commitment",
        "1000.00 is above the maximum spend of 500.00",
        'contract: {minimum_commitment: "1000.00"}',
    ),
    "unknown contract term": (
        'contract: {minimum_commitment: "1000.00"}',
        'contract: {minimum_commitment: "1000.00", discount: 5}',
        "subscriptions[1].contract.discount",
        "unknown field; expected one of reference, minimum_commitment, prices, "
        "discount_percent, maximum_spend",
    ),
    "grant in another currency": (
        "currency: USD, effective_from: 2026-11-01",
        "currency: EUR, effective_from: 2026-11-01",
        "customers[0].credits[0].currency",
        "EUR is not the customer's billing currency (USD)",
    ),
    "grant finer than its currency": (
        'amount: "25.00"',
        'amount: "25.005"',
        "customers[0].credits[0].amount",
        "25.005 has more decimal places than USD allows (2)",
    ),
    "grant of nothing": (
        'amount: "25.00"',
        'amount: "0.00"',
        "customers[0].credits[0].amount",
        "must be greater than 0, got 0.00",
    ),
    "grant without a currency": (
        "currency: USD, effective_from: 2026-11-01",
        "effective_from: 2026-11-01",
        "customers[0].credits[0].currency",
        "required",
    ),
    "grant expiring as it starts": (
        "effective_from: 2026-11-01T00:00:00Z}",
        "effective_from: 2026-11-01T00:00:00Z, expires_at: 2026-11-01T01:00:00+01:00}",
        "customers[0].credits[0].expires_at",
        "must be after effective_from (2026-11-01T00:00:00+00:00)",
    ),
    "grant priority not a number": (
        "effective_from: 2026-11-01T00:00:00Z}",
        "effective_from: 2026-11-01T00:00:00Z, priority: first}",
        "customers[0].credits[0].priority",
        "'first' is not a whole number",
    ),
    "grant key twice across customers": (
        "segment: enterprise, region: eu-west-1}\n",
        "segment: enterprise, region: eu-west-1}\n"
        '    credits: [{key: promo, amount: "5.00", currency: EUR,\n'
        "               effective_from: 2026-11-01T00:00:00Z}]\n",
        "customers[1].credits[0].key",
        "duplicate credit grant 'promo' (also customers[0].credits[0] (line",
        "credits: [{key: promo",
    ),
    "unknown grant field": (
        "effective_from: 2026-11-01T00:00:00Z}",
        "effective_from: 2026-11-01T00:00:00Z, expires: 2027-01-01T00:00:00Z}",
        "customers[0].credits[0].expires",
        "unknown field; expected one of key, amount, currency, effective_from, expires_at",
    ),
    "bad rounding": (
        "meters:\n",
        "rounding: bankers\nmeters:\n",
        "rounding",
        "'bankers' is not one of half_even, half_up, down, up",
    ),
    "threshold above 100": (
        "meters:\n",
        "credit_thresholds: [50, 120]\nmeters:\n",
        "credit_thresholds[1]",
        "must be within 1..100, got 120",
    ),
    "threshold of zero": (
        "meters:\n",
        "credit_thresholds: [0]\nmeters:\n",
        "credit_thresholds[0]",
        "must be within 1..100, got 0",
    ),
    "threshold not whole": (
        "meters:\n",
        "credit_thresholds: [50, 75.5]\nmeters:\n",
        "credit_thresholds[1]",
        "'75.5' is not a whole number",
    ),
    "threshold twice": (
        "meters:\n",
        "credit_thresholds: [50, 050]\nmeters:\n",
        "credit_thresholds[1]",
        "duplicate threshold 050 (also credit_thresholds[0] (line 1))",
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_each_term_problem_is_reported_at_its_line(case: tuple[str, ...]) -> None:
    old, new, path, message, *needle = case
    text = edited(old, new, WITH_GRANT)
    problem = find(problems_of(text), path, message)
    at = WITH_GRANT.index(old)
    assert problem.line == line_of(text, needle[0] if needle else new.lstrip("\n"), at)


def test_terms_survive_json_exactly_and_change_the_version() -> None:
    catalog = parsed(FULL)
    text = catalog.to_json()
    again = Catalog.from_json(text)
    assert again == catalog and again.to_json() == text and again.version == catalog.version
    assert catalog.version != parsed().version


@pytest.mark.parametrize(
    "old, new",
    [
        ("included: 1000", "included: 1001"),
        ('discount_percent: "12.5"', 'discount_percent: "12.6"'),
        ('maximum_spend: "5000.00"', 'maximum_spend: "5000.01"'),
        ("discount_percent: 10,", "discount_percent: 11,"),
        ('maximum_spend: "2000.00"}', 'maximum_spend: "2000.10"}'),
        ("rounding: half_up", "rounding: down"),
        ("credit_thresholds: [25,", "credit_thresholds: [26,"),
        ('amount: "25.00"', 'amount: "25.01"'),
        ("effective_from: 2026-11-01T00:00:00Z}", "effective_from: 2026-11-02T00:00:00Z}"),
        (
            "effective_from: 2026-11-01T00:00:00Z}",
            "effective_from: 2026-11-01T00:00:00Z, expires_at: 2027-01-01T00:00:00Z}",
        ),
        (
            "effective_from: 2026-11-01T00:00:00Z}",
            "effective_from: 2026-11-01T00:00:00Z, priority: 7}",
        ),
    ],
)
def test_version_changes_with_each_term(old: str, new: str) -> None:
    assert parsed(edited(old, new, FULL)).version != parsed(FULL).version


def test_a_format_1_document_reads_with_the_defaults() -> None:
    catalog = parsed()
    doc = json.loads(catalog.to_json())
    doc["format"] = 1
    for key in ("rounding", "credit_thresholds"):
        del doc[key]
    for customer in doc["customers"]:
        del customer["credits"]
    for plan in doc["plans"]:
        del plan["discount_percent"], plan["maximum_spend"]
        for price in plan["rate_card"]:
            del price["included"]
    for sub in doc["subscriptions"]:
        if sub["contract"]:
            del sub["contract"]["discount_percent"], sub["contract"]["maximum_spend"]
    assert Catalog.from_json(json.dumps(doc)) == catalog
