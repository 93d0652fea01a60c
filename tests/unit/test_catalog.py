"""The billing catalog: every problem reported at its line, exact amounts, instant queries."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from textwrap import dedent, indent

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.files import load_catalog
from streams.domain.catalog import (
    MINOR_UNITS,
    BillingProfile,
    Catalog,
    Contract,
    CreditGrant,
    Customer,
    DimensionPrice,
    DimensionRate,
    FlatPrice,
    GraduatedPrice,
    PackagePrice,
    Plan,
    PriceModel,
    Problem,
    Rounding,
    RoutingRule,
    Segment,
    SubjectAssignment,
    Subscription,
    Tier,
    UnitPrice,
    VolumePrice,
    fits_currency,
    parse_catalog,
)
from streams.domain.catalog.codec import PRICE_CODECS
from streams.domain.catalog.fields import decimal
from streams.domain.catalog.parse_prices import MODEL_FIELDS
from streams.domain.catalog.problems import Report, parse_path, path_text
from streams.domain.errors import ConfigError
from streams.domain.meters import Aggregation, Meter, MeterIndex

BASE = dedent(
    """\
    meters:
      - {key: api_calls, event_type: api.calls, aggregation: SUM, value_property: calls, group_by: [endpoint]}
      - {key: ai_tokens, event_type: ai.tokens, aggregation: SUM, value_property: tokens, group_by: [model, direction]}
    customers:
      - key: acme
        name: Acme
        billing: {currency: USD, anchor_day: 1, rail: stripe, account: cus_A1, segment: self_service, region: us-east-1}
      - key: globex
        billing: {currency: EUR, anchor_day: 28, rail: netsuite, account: 0042, segment: enterprise, region: eu-west-1}
    subjects:
      - {customer: acme, subject: key_a, effective_from: 2026-01-01T00:00:00Z, effective_to: 2026-11-15T00:00:00Z}
      - {customer: globex, subject: key_a, effective_from: 2026-11-15T00:00:00Z}
      - {customer: globex, subjects: [key_g1, key_g2], effective_from: 2026-01-01T00:00:00+01:00}
    plans:
      - key: pro-usd
        currency: USD
        rate_card:
          - {meter: api_calls, model: per_unit, unit_amount: "0.001"}
      - key: ent-eur
        currency: EUR
        rate_card:
          - {meter: ai_tokens, model: per_unit, unit_amount: 0.000002}
    subscriptions:
      - {customer: acme, plan: pro-usd, effective_from: 2026-01-01T00:00:00Z}
      - {customer: globex, plan: ent-eur, effective_from: 2026-01-01T00:00:00Z, contract: {minimum_commitment: "1000.00"}}
    """
)
MOVE = datetime(2026, 11, 15, tzinfo=UTC)
TICK = timedelta(microseconds=1)


def line_of(text: str, needle: str, start: int = 0) -> int:
    """The 1-based line of the first ``needle`` in ``text`` at or after ``start``."""
    return text.count("\n", 0, text.index(needle, start)) + 1


def edited(old: str, new: str, text: str = BASE) -> str:
    assert text.count(old) >= 1, old
    return text.replace(old, new, 1)


def problems_of(text: str) -> list[Problem]:
    catalog, problems = parse_catalog(text, "cat.yaml")
    assert catalog is None and problems, "expected problems"
    return problems


def parsed(text: str = BASE) -> Catalog:
    catalog, problems = parse_catalog(text, "cat.yaml")
    assert problems == [] and catalog is not None
    return catalog


def find(problems: list[Problem], path: str, fragment: str) -> Problem:
    for p in problems:
        if p.path == path and fragment in p.message:
            return p
    raise AssertionError(f"no {path}: ...{fragment}... in\n" + "\n".join(map(str, problems)))


def test_the_base_catalog_is_clean() -> None:
    catalog = parsed()
    assert [c.key for c in catalog.customers] == ["acme", "globex"]
    assert len(catalog.assignments) == 4 and len(catalog.subscriptions) == 2


# Every kind of problem, each at the line a user would edit. (old, new, path, message);
# the expected line is where `new` starts, unless a needle is given.
CASES: dict[str, tuple[str, str, str, str] | tuple[str, str, str, str, str]] = {
    "unknown meter": (
        "{meter: api_calls, model: per_unit",
        "{meter: api_calz, model: per_unit",
        "plans[0].rate_card[0].meter",
        "unknown meter 'api_calz'; declared meters: ai_tokens, api_calls",
    ),
    "duplicate meter": (
        "{key: ai_tokens, event_type",
        "{key: api_calls, event_type",
        "meters[1].key",
        "duplicate meter 'api_calls'",
    ),
    "bad meter aggregation": (
        "aggregation: SUM, value_property: tokens",
        "aggregation: SUMM, value_property: tokens",
        "meters[1].aggregation",
        "'SUMM' is not one of SUM",
    ),
    "unknown meter field": (
        "value_property: tokens,",
        "value_property: tokens, unit: tok,",
        "meters[1].unit",
        "unknown field",
    ),
    "duplicate customer": (
        "- key: globex",
        "- key: acme",
        "customers[1].key",
        "duplicate customer 'acme' (also customers[0] (line 5))",
    ),
    "duplicate plan": (
        "- key: ent-eur",
        "- key: pro-usd",
        "plans[1].key",
        "duplicate plan 'pro-usd'",
    ),
    "duplicate price": (
        '{meter: api_calls, model: per_unit, unit_amount: "0.001"}',
        '{meter: api_calls, model: per_unit, unit_amount: "0.001"}\n      - {meter: api_calls, model: flat, amount: "5.00"}',
        "plans[0].rate_card[1].key",
        "duplicate price 'api_calls'",
        "model: flat",
    ),
    "duplicate yaml key": (
        "    name: Acme\n",
        "    name: Acme\n    name: Acme Inc\n",
        "customers[0]",
        "duplicate key 'name' (first on line 6)",
        "name: Acme Inc",
    ),
    "overlapping subjects": (
        "effective_to: 2026-11-15T00:00:00Z}",
        "effective_to: 2026-11-15T00:00:01Z}",
        "subjects[1].subject",
        "subject 'key_a' overlaps its assignment to 'acme' at subjects[0].subject (line 11)",
        "{customer: globex, subject: key_a",
    ),
    "open-ended subject overlap": (
        "subjects: [key_g1, key_g2], effective_from: 2026-01-01T00:00:00+01:00}",
        "subjects: [key_g1, key_g2], effective_from: 2026-01-01T00:00:00+01:00}\n  - {customer: acme, subject: key_g2, effective_from: 2027-01-01T00:00:00Z}",
        "subjects[3].subject",
        "subject 'key_g2' overlaps its assignment to 'globex' at subjects[2].subjects[1]",
        "{customer: acme, subject: key_g2",
    ),
    "duplicate subject in one list": (
        "[key_g1, key_g2]",
        "[key_g1, key_g1]",
        "subjects[2].subjects[1]",
        "duplicate subject 'key_g1'",
    ),
    "unknown customer for a subject": (
        "{customer: globex, subject: key_a",
        "{customer: globx, subject: key_a",
        "subjects[1].customer",
        "unknown customer 'globx'",
    ),
    "subject and subjects": (
        "{customer: globex, subjects: [key_g1",
        "{customer: globex, subject: key_x, subjects: [key_g1",
        "subjects[2]",
        "either subject: <one> or subjects: [<several>]",
    ),
    "unknown currency": (
        "{currency: USD, anchor_day: 1",
        "{currency: USX, anchor_day: 1",
        "customers[0].billing.currency",
        "unknown currency 'USX'",
    ),
    "unknown plan currency": (
        "currency: EUR\n",
        "currency: eur\n",
        "plans[1].currency",
        "unknown currency 'eur'",
        "currency: eur",
    ),
    "plan currency differs from customer's": (
        "{customer: acme, plan: pro-usd",
        "{customer: acme, plan: ent-eur",
        "subscriptions[0].plan",
        "plan 'ent-eur' is priced in EUR but customer 'acme' is billed in USD",
    ),
    "overlapping subscriptions": (
        "subscriptions:\n",
        "subscriptions:\n  - {customer: globex, plan: ent-eur, effective_from: 2025-01-01T00:00:00Z, effective_to: 2026-01-02T00:00:00Z}\n",
        "subscriptions[2]",
        "customer 'globex' is already subscribed for this time by subscriptions[0]",
        "{customer: globex, plan: ent-eur, effective_from: 2026-01-01",
    ),
    "plan change inside a day": (
        "subscriptions:\n",
        "subscriptions:\n  - {customer: globex, plan: ent-eur, effective_from: 2024-01-01T12:30:00Z, effective_to: 2025-01-01T00:00:00Z}\n",
        "subscriptions[0].effective_from",
        "a plan starts and ends at 00:00 UTC, not 12:30:00",
        "{customer: globex, plan: ent-eur, effective_from: 2024-01-01T12:30:00Z",
    ),
    "unknown plan": (
        "{customer: acme, plan: pro-usd",
        "{customer: acme, plan: pro",
        "subscriptions[0].plan",
        "unknown plan 'pro'; declared plans: ent-eur, pro-usd",
    ),
    "unknown customer for a subscription": (
        "{customer: acme, plan: pro-usd",
        "{customer: acne, plan: pro-usd",
        "subscriptions[0].customer",
        "unknown customer 'acne'",
    ),
    "period ends as it starts": (
        "effective_from: 2026-01-01T00:00:00Z, effective_to: 2026-11-15T00:00:00Z}",
        "effective_from: 2026-11-15T00:00:00Z, effective_to: 2026-11-15T00:00:00Z}",
        "subjects[0].effective_to",
        "must be after effective_from (2026-11-15T00:00:00+00:00)",
    ),
    "period ends before it starts, across offsets": (
        "{customer: acme, plan: pro-usd, effective_from: 2026-01-01T00:00:00Z}",
        "{customer: acme, plan: pro-usd, effective_from: 2026-01-01T00:00:00Z, effective_to: 2026-01-01T00:30:00+01:00}",
        "subscriptions[0].effective_to",
        "must be after effective_from",
    ),
    "naive timestamp": (
        "effective_from: 2026-11-15T00:00:00Z}",
        "effective_from: 2026-11-15T00:00:00}",
        "subjects[1].effective_from",
        "has no UTC offset",
    ),
    "date without time": (
        "effective_from: 2026-11-15T00:00:00Z}",
        "effective_from: 2026-11-15}",
        "subjects[1].effective_from",
        "has no UTC offset",
    ),
    "not a timestamp": (
        "effective_from: 2026-11-15T00:00:00Z}",
        "effective_from: next monday}",
        "subjects[1].effective_from",
        "is not an ISO 8601 timestamp",
    ),
    "anchor day zero": (
        "anchor_day: 1,",
        "anchor_day: 0,",
        "customers[0].billing.anchor_day",
        "must be within 1..31, got 0",
    ),
    "anchor day 32": (
        "anchor_day: 28,",
        "anchor_day: 32,",
        "customers[1].billing.anchor_day",
        "must be within 1..31, got 32",
    ),
    "anchor day not a number": (
        "anchor_day: 1,",
        "anchor_day: 1.5,",
        "customers[0].billing.anchor_day",
        "'1.5' is not a whole number",
    ),
    "rail with capitals": (
        "rail: stripe",
        "rail: Stripe",
        "customers[0].billing.rail",
        "'Stripe' must be a lowercase identifier",
    ),
    "rail with a dash": (
        "rail: netsuite",
        "rail: net-suite",
        "customers[1].billing.rail",
        "must be a lowercase identifier",
    ),
    "rail starting with a digit": (
        "rail: stripe",
        "rail: 2checkout",
        "customers[0].billing.rail",
        "must be a lowercase identifier",
    ),
    "no rail and no routing": (
        "rail: stripe, ",
        "",
        "customers[0].billing.rail",
        "required: no routing rule matches segment self_service in region us-east-1",
    ),
    "bad segment": (
        "segment: enterprise",
        "segment: smb",
        "customers[1].billing.segment",
        "'smb' is not one of self_service, enterprise",
    ),
    "missing region": (
        ", region: eu-west-1}",
        "}",
        "customers[1].billing.region",
        "required",
    ),
    "unknown price model": (
        'model: per_unit, unit_amount: "0.001"',
        'model: tiered, unit_amount: "0.001"',
        "plans[0].rate_card[0].model",
        "'tiered' is not one of flat, per_unit, graduated, volume, package, dimension",
    ),
    "field of another model": (
        'model: per_unit, unit_amount: "0.001"',
        'model: per_unit, unit_amount: "0.001", tiers: []',
        "plans[0].rate_card[0].tiers",
        "unknown field; expected one of key, meter, model, unit_amount",
    ),
    "not a decimal": (
        'unit_amount: "0.001"',
        'unit_amount: "one cent"',
        "plans[0].rate_card[0].unit_amount",
        "'one cent' is not a decimal number",
    ),
    "yaml infinity": (
        'unit_amount: "0.001"',
        "unit_amount: .inf",
        "plans[0].rate_card[0].unit_amount",
        "'.inf' is not a decimal number",
    ),
    "decimal infinity": (
        'unit_amount: "0.001"',
        "unit_amount: Infinity",
        "plans[0].rate_card[0].unit_amount",
        "'Infinity' is not a finite number",
    ),
    "not a number": (
        'unit_amount: "0.001"',
        "unit_amount: NaN",
        "plans[0].rate_card[0].unit_amount",
        "'NaN' is not a finite number",
    ),
    "negative amount": (
        'unit_amount: "0.001"',
        "unit_amount: -0.001",
        "plans[0].rate_card[0].unit_amount",
        "must not be negative, got -0.001",
    ),
    "flat fee finer than the currency": (
        '{meter: api_calls, model: per_unit, unit_amount: "0.001"}',
        '{key: fee, model: flat, amount: "9.999"}',
        "plans[0].rate_card[0].amount",
        "9.999 has more decimal places than USD allows (2)",
    ),
    "flat fee without meter or key": (
        '{meter: api_calls, model: per_unit, unit_amount: "0.001"}',
        '{model: flat, amount: "9.99"}',
        "plans[0].rate_card[0].key",
        "required for a flat fee without a meter",
    ),
    "minimum commitment finer than the currency": (
        'minimum_commitment: "1000.00"',
        'minimum_commitment: "1000.001"',
        "subscriptions[1].contract.minimum_commitment",
        "more decimal places than EUR allows (2)",
    ),
    "unknown contract field": (
        'minimum_commitment: "1000.00"',
        'minimum: "1000.00"',
        "subscriptions[1].contract.minimum",
        "unknown field; expected one of reference, minimum_commitment, prices",
    ),
    "tiers not ascending": (
        '{meter: api_calls, model: per_unit, unit_amount: "0.001"}',
        "{meter: api_calls, model: graduated, tiers: [{up_to: 100, unit_amount: 0},\n        {up_to: 100, unit_amount: 1}, {unit_amount: 2}]}",
        "plans[0].rate_card[0].tiers[1].up_to",
        "tiers must ascend: 100 is not above 100 of the tier before",
        "{up_to: 100, unit_amount: 1}",
    ),
    "last tier bounded": (
        '{meter: api_calls, model: per_unit, unit_amount: "0.001"}',
        "{meter: api_calls, model: volume, tiers: [{up_to: 10, unit_amount: 1}, {up_to: 20, unit_amount: 2}]}",
        "plans[0].rate_card[0].tiers[1].up_to",
        "the last tier must be open-ended",
    ),
    "open tier before the last": (
        '{meter: api_calls, model: per_unit, unit_amount: "0.001"}',
        "{meter: api_calls, model: volume, tiers: [{unit_amount: 1}, {unit_amount: 2}]}",
        "plans[0].rate_card[0].tiers[0].up_to",
        "only the last tier may be open-ended",
    ),
    "tier without an amount": (
        '{meter: api_calls, model: per_unit, unit_amount: "0.001"}',
        "{meter: api_calls, model: graduated, tiers: [{up_to: 10}, {unit_amount: 2}]}",
        "plans[0].rate_card[0].tiers[0]",
        "needs unit_amount, flat_amount or both",
    ),
    "no tiers": (
        '{meter: api_calls, model: per_unit, unit_amount: "0.001"}',
        "{meter: api_calls, model: graduated}",
        "plans[0].rate_card[0].tiers",
        "required: a list of tiers",
    ),
    "package of zero": (
        '{meter: api_calls, model: per_unit, unit_amount: "0.001"}',
        '{meter: api_calls, model: package, package_size: 0, amount: "1.00"}',
        "plans[0].rate_card[0].package_size",
        "must be greater than 0, got 0",
    ),
    "dimension not grouped by": (
        "{meter: ai_tokens, model: per_unit, unit_amount: 0.000002}",
        "{meter: ai_tokens, model: dimension, prices: [{when: {region: eu}, unit_amount: 1}]}",
        "plans[1].rate_card[0].prices[0].when.region",
        "'region' is not a group-by dimension of meter 'ai_tokens' (it groups by model, direction)",
    ),
    "dimension entries disagree": (
        "{meter: ai_tokens, model: per_unit, unit_amount: 0.000002}",
        "{meter: ai_tokens, model: dimension, prices: [{when: {model: a}, unit_amount: 1},\n        {when: {model: b, direction: input}, unit_amount: 1}]}",
        "plans[1].rate_card[0].prices[1].when",
        "names direction, model but plans[1].rate_card[0].prices[0] (line",
        "{when: {model: b",
    ),
    "dimension combination twice": (
        "{meter: ai_tokens, model: per_unit, unit_amount: 0.000002}",
        "{meter: ai_tokens, model: dimension, prices: [{when: {model: a}, unit_amount: 1},\n        {when: {model: a}, unit_amount: 2}]}",
        "plans[1].rate_card[0].prices[1].when",
        "duplicate combination",
        "{when: {model: a}, unit_amount: 2}",
    ),
    "dimension without prices": (
        "{meter: ai_tokens, model: per_unit, unit_amount: 0.000002}",
        "{meter: ai_tokens, model: dimension}",
        "plans[1].rate_card[0].prices",
        "required",
    ),
    "unknown top-level section": (
        "plans:\n",
        "plan:\n",
        "plan",
        "unknown field; expected one of meters, routing, customers, subjects, plans, subscriptions",
    ),
    "list expected": (
        "subjects:\n",
        "subjects: key_a\nold_subjects:\n",
        "subjects",
        "must be a list",
    ),
    "bad customer key": (
        "- key: globex",
        "- key: -globex",
        "customers[1].key",
        "'-globex' must be letters, digits",
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_each_problem_is_reported_at_its_line(case: tuple[str, ...]) -> None:
    old, new, path, message, *needle = case
    text = edited(old, new)
    problem = find(problems_of(text), path, message)
    at = BASE.index(old)  # where the edit went in
    assert problem.line == line_of(text, needle[0] if needle else new.lstrip("\n"), at)
    assert problem.source == "cat.yaml"
    assert str(problem) == f"cat.yaml:{problem.line}: {path}: {problem.message}"


def test_a_price_naming_an_invalid_meter_is_not_reported_twice() -> None:
    text = edited(
        "aggregation: SUM, value_property: calls", "aggregation: SUMM, value_property: calls"
    )
    problems = problems_of(text)
    assert [p.path for p in problems] == ["meters[0].aggregation"]


def test_a_subject_of_an_invalid_customer_is_not_reported_as_unknown() -> None:
    problems = problems_of(edited("{currency: EUR", "{currency: XXX"))
    assert [p.path for p in problems] == ["customers[1].billing.currency"]


def test_every_problem_is_reported_at_once_in_line_order() -> None:
    text = BASE
    for old, new in [
        ("aggregation: SUM, value_property: tokens", "aggregation: SUMM, value_property: tokens"),
        ("rail: stripe", "rail: Stripe"),
        ("{currency: USD, anchor_day: 1", "{currency: USX, anchor_day: 1"),
        ("effective_from: 2026-11-15T00:00:00Z}", "effective_from: 2026-11-15}"),
        ("{customer: globex, subjects", "{customer: initech, subjects"),
        ("model: per_unit, unit_amount: 0.000002", "model: tiered, unit_amount: 0.000002"),
        ("currency: EUR\n", "currency: EURO\n"),
        ("{customer: globex, plan: ent-eur", "{customer: globex, plan: pro-usd"),
    ]:
        text = edited(old, new, text)
    problems = problems_of(text)
    assert [(p.line, p.path) for p in problems] == [
        (3, "meters[1].aggregation"),
        (7, "customers[0].billing.currency"),
        (7, "customers[0].billing.rail"),
        (12, "subjects[1].effective_from"),
        (13, "subjects[2].customer"),
        (20, "plans[1].currency"),
        (22, "plans[1].rate_card[0].model"),
        (25, "subscriptions[1].plan"),
    ]
    assert "plan 'pro-usd' is priced in USD but customer 'globex' is billed in EUR" in str(
        problems[-1]
    )


def test_yaml_syntax_errors_have_a_line() -> None:
    text = edited("    name: Acme\n", "    name: [Acme\n")
    problems = problems_of(text)
    assert len(problems) == 1 and problems[0].line >= line_of(text, "[Acme")
    assert "not valid YAML" in problems[0].message


@pytest.mark.parametrize(
    "text, message",
    [("- a\n- b\n", "must be a mapping with meters"), ("", None), ("# nothing yet\n", None)],
)
def test_documents_that_are_empty_or_not_a_mapping(text: str, message: str | None) -> None:
    catalog, problems = parse_catalog(text)
    if message is None:
        assert problems == [] and catalog == Catalog()
    else:
        assert catalog is None and message in problems[0].message and problems[0].line == 1


def test_recursive_aliases_are_refused_not_followed() -> None:
    problems = problems_of("meters: &loop\n  - *loop\n")
    assert "nests or repeats too deeply" in problems[0].message


def test_anchors_and_merge_keys_share_billing_settings() -> None:
    text = edited(
        "    billing: {currency: USD, anchor_day: 1, rail: stripe, account: cus_A1, segment: self_service, region: us-east-1}",
        "    billing: &card {currency: USD, anchor_day: 1, rail: stripe, account: cus_A1, segment: self_service, region: us-east-1}\n"
        "  - key: initech\n    billing: {<<: *card, account: cus_B2, anchor_day: 9}",
    )
    initech = parsed(text).customer("initech")
    assert initech is not None
    assert (initech.billing.account, initech.billing.anchor_day, initech.billing.rail) == (
        "cus_B2",
        9,
        "stripe",
    )


# Exact values: amounts and ids are read from their text, never through float or octal.


def test_amounts_are_exact_decimals_from_their_text() -> None:
    catalog = parsed()
    ent = catalog.plan("ent-eur")
    assert ent is not None and isinstance(ent.rate_card[0], UnitPrice)
    assert ent.rate_card[0].unit_amount == Decimal("0.000002")
    assert str(ent.rate_card[0].unit_amount) == "0.000002"
    assert json.loads(catalog.to_json())["plans"][0]["rate_card"][0]["unit_amount"] == "0.000002"


@pytest.mark.parametrize(
    "written, exact",
    [
        ("0.1", "0.1"),
        ("0.000002", "0.000002"),
        ('"0.30"', "0.30"),
        ("1_000.5", "1000.5"),
        ("2e-7", "2E-7"),
        ("12", "12"),
    ],
)
def test_unquoted_numbers_keep_every_digit(written: str, exact: str) -> None:
    text = edited('unit_amount: "0.001"', f"unit_amount: {written}")
    price = parsed(text).rate_card_for("acme", MOVE)
    assert price is not None and isinstance(price[0], UnitPrice)
    assert str(price[0].unit_amount) == exact


def test_account_ids_keep_their_leading_zeros() -> None:
    globex = parsed().customer("globex")
    assert globex is not None and globex.billing.account == "0042"  # YAML 1.1 would read octal 34


def test_floats_given_directly_are_refused_not_rounded() -> None:
    report = Report("x", {})
    assert decimal(report, 0.1, ("amount",)) is None
    assert "float and may be inexact" in report.problems[0].message
    assert decimal(report, 3, ("amount",)) == Decimal(3)


def test_minor_units_cover_the_common_currencies() -> None:
    expected = {
        "USD": 2,
        "EUR": 2,
        "GBP": 2,
        "JPY": 0,
        "KWD": 3,
        "CHF": 2,
        "CAD": 2,
        "AUD": 2,
        "INR": 2,
        "BRL": 2,
    }
    assert {code: MINOR_UNITS[code] for code in expected} == expected
    assert fits_currency(Decimal("100.00"), "JPY") and not fits_currency(Decimal("100.5"), "JPY")
    assert fits_currency(Decimal("1.234"), "KWD") and not fits_currency(Decimal("1.2345"), "KWD")
    assert fits_currency(Decimal("1E+40"), "USD") and fits_currency(Decimal("0.000"), "JPY")


def test_a_yen_fee_may_not_have_sen() -> None:
    text = edited("currency: USD\n", "currency: JPY\n").replace("{currency: USD", "{currency: JPY")
    text = edited(
        '{meter: api_calls, model: per_unit, unit_amount: "0.001"}',
        '{key: fee, model: flat, amount: "980.50"}',
        text,
    )
    find(
        problems_of(text), "plans[0].rate_card[0].amount", "more decimal places than JPY allows (0)"
    )
    parsed(text.replace('"980.50"', '"980"'))


# The model each price becomes.


def test_every_price_model_parses_to_its_type() -> None:
    text = edited(
        '      - {meter: api_calls, model: per_unit, unit_amount: "0.001"}\n',
        indent(
            dedent(
                """\
                  - {key: fee, model: flat, amount: "49.00"}
                  - {meter: api_calls, model: graduated, tiers: [{up_to: 1000, unit_amount: 0}, {unit_amount: "0.0004", flat_amount: "1.00"}]}
                  - {key: bulk, meter: api_calls, model: volume, tiers: [{up_to: 10, unit_amount: 2}, {unit_amount: 1}]}
                  - {key: packs, meter: api_calls, model: package, package_size: 1000, amount: "0.50"}
                  - key: tokens
                    meter: ai_tokens
                    model: dimension
                    default_unit_amount: "0.000003"
                    prices:
                      - {when: {direction: output, model: gpt-4o}, unit_amount: "0.00001"}
                      - {when: {model: gpt-4o, direction: input}, unit_amount: "0.0000025"}
                """
            ),
            "      ",
        ),
    )
    card = parsed(text).rate_card_for("acme", MOVE)
    assert card == (
        GraduatedPrice(
            "api_calls",
            "api_calls",
            (Tier(Decimal(1000)), Tier(None, Decimal("0.0004"), Decimal("1.00"))),
        ),
        VolumePrice("bulk", "api_calls", (Tier(Decimal(10), Decimal(2)), Tier(None, Decimal(1)))),
        FlatPrice("fee", Decimal("49.00")),
        PackagePrice("packs", "api_calls", Decimal(1000), Decimal("0.50")),
        DimensionPrice(
            "tokens",
            "ai_tokens",
            ("model", "direction"),  # the meter's group-by order, however `when` was written
            (
                DimensionRate(("gpt-4o", "input"), Decimal("0.0000025")),
                DimensionRate(("gpt-4o", "output"), Decimal("0.00001")),
            ),
            Decimal("0.000003"),
        ),
    )
    tokens = card[-1]
    assert isinstance(tokens, DimensionPrice)
    assert tokens.unit_amount_for({"model": "gpt-4o", "direction": "output"}) == Decimal("0.00001")
    assert tokens.unit_amount_for({"model": "llama", "direction": "output"}) == Decimal("0.000003")


def test_every_price_model_has_fields_and_a_codec() -> None:
    assert set(MODEL_FIELDS) == set(PriceModel) == set(PRICE_CODECS)


def test_routing_rules_give_a_rail_to_customers_without_one() -> None:
    text = edited(
        "customers:\n",
        "routing:\n  - {when: {segment: enterprise}, rail: sap}\n  - {rail: webhook}\ncustomers:\n",
    )
    text = text.replace("rail: stripe, ", "").replace("rail: netsuite, ", "")
    catalog = parsed(text)
    rails = {c.key: c.billing.rail for c in catalog.customers}
    assert rails == {"acme": "webhook", "globex": "sap"}
    assert catalog.routing == (RoutingRule("sap", Segment.ENTERPRISE), RoutingRule("webhook"))


def test_routing_rules_are_validated() -> None:
    text = edited(
        "customers:\n",
        "routing:\n  - {when: {segment: smb, planet: mars}, rail: Sap}\ncustomers:\n",
    )
    problems = problems_of(text)
    for path, message in [
        ("routing[0].when.segment", "'smb' is not one of"),
        ("routing[0].when.planet", "unknown field"),
        ("routing[0].rail", "must be a lowercase identifier"),
    ]:
        assert find(problems, path, message).line == 5


# Queries at an instant.


def test_customer_for_at_and_around_the_move() -> None:
    catalog = parsed()
    assert catalog.customer_for("key_a", datetime(2025, 12, 31, 23, 59, tzinfo=UTC)) is None
    assert catalog.customer_for("key_a", datetime(2026, 1, 1, tzinfo=UTC)) == "acme"
    assert catalog.customer_for("key_a", MOVE - TICK) == "acme"
    assert (
        catalog.customer_for("key_a", MOVE) == "globex"
    )  # half-open: the new owner at the instant
    assert catalog.customer_for("key_a", MOVE + TICK) == "globex"
    assert catalog.customer_for("key_a", datetime(9999, 1, 1, tzinfo=UTC)) == "globex"
    paris = timezone(timedelta(hours=1))
    assert catalog.customer_for("key_a", datetime(2026, 11, 15, 0, 59, 59, tzinfo=paris)) == "acme"
    assert catalog.customer_for("key_a", datetime(2026, 11, 15, 1, tzinfo=paris)) == "globex"
    assert catalog.customer_for("key_nobody", MOVE) is None


def test_offsets_are_honoured_and_stored_as_utc() -> None:
    catalog = parsed()
    g1 = next(a for a in catalog.assignments if a.subject == "key_g1")
    assert g1.effective_from == datetime(2025, 12, 31, 23, tzinfo=UTC)
    assert g1.effective_from.tzinfo is UTC
    assert catalog.customer_for("key_g1", datetime(2025, 12, 31, 22, 59, 59, tzinfo=UTC)) is None
    assert catalog.customer_for("key_g1", datetime(2025, 12, 31, 23, tzinfo=UTC)) == "globex"


def test_subjects_of_follow_the_move() -> None:
    catalog = parsed()
    assert catalog.subjects_of("acme", MOVE - TICK) == ("key_a",)
    assert catalog.subjects_of("acme", MOVE) == ()
    assert catalog.subjects_of("globex", MOVE - TICK) == ("key_g1", "key_g2")
    assert catalog.subjects_of("globex", MOVE) == ("key_a", "key_g1", "key_g2")
    assert catalog.subjects_of("initech", MOVE) == ()


def test_subscription_for_switches_at_the_boundary() -> None:
    upgrade = datetime(2026, 6, 1, tzinfo=UTC)
    text = edited(
        "{customer: acme, plan: pro-usd, effective_from: 2026-01-01T00:00:00Z}",
        "{customer: acme, plan: starter, effective_from: 2026-01-01T00:00:00Z, effective_to: 2026-06-01T00:00:00Z}\n"
        "  - {customer: acme, plan: pro-usd, effective_from: 2026-06-01T00:00:00Z, effective_to: 2027-01-01T00:00:00Z}",
    )
    text = edited("plans:\n", "plans:\n  - {key: starter, currency: USD, rate_card: []}\n", text)
    catalog = parsed(text)

    def plan_at(at: datetime) -> str | None:
        sub = catalog.subscription_for("acme", at)
        return sub.plan if sub else None

    assert plan_at(datetime(2025, 12, 31, tzinfo=UTC)) is None
    assert plan_at(upgrade - TICK) == "starter"
    assert plan_at(upgrade) == "pro-usd"
    assert plan_at(datetime(2027, 1, 1, tzinfo=UTC)) is None
    assert catalog.rate_card_for("acme", datetime(2027, 1, 1, tzinfo=UTC)) is None
    assert catalog.subscription_for("nobody", upgrade) is None


def test_a_contract_replaces_plan_prices_by_key_and_adds_its_own() -> None:
    text = edited(
        'contract: {minimum_commitment: "1000.00"}',
        'contract: {reference: MSA-7, minimum_commitment: "1000.00", prices: ['
        '{meter: ai_tokens, model: per_unit, unit_amount: "0.0000015"}, {key: support, model: flat, amount: "500.00"}]}',
    )
    catalog = parsed(text)
    sub = catalog.subscription_for("globex", MOVE)
    assert sub is not None and sub.contract is not None
    assert (sub.contract.reference, sub.contract.minimum_commitment) == (
        "MSA-7",
        Decimal("1000.00"),
    )
    assert catalog.rate_card_for("globex", MOVE) == (
        UnitPrice("ai_tokens", "ai_tokens", Decimal("0.0000015")),
        FlatPrice("support", Decimal("500.00")),
    )


def test_queries_refuse_naive_instants() -> None:
    catalog = parsed()
    naive = datetime(2026, 11, 15)  # noqa: DTZ001 - the point of the test
    for query in (catalog.customer_for, catalog.subjects_of, catalog.subscription_for):
        with pytest.raises(ValueError, match="naive"):
            query("acme", naive)


def test_meter_index_serves_ingest() -> None:
    index = parsed().meter_index
    assert isinstance(index, MeterIndex)
    assert index.knows("ai.tokens") and not index.knows("gpu.minutes")
    assert index.numeric["api.calls"] == frozenset({"calls"})


def test_customer_for_matches_a_linear_scan() -> None:
    """The bisect index answers exactly what checking every assignment would."""
    starts = [datetime(2026, 1, d, tzinfo=UTC) for d in (1, 5, 9, 20)]
    assignments = [
        SubjectAssignment("s", "a", starts[0], starts[1]),
        SubjectAssignment("s", "b", starts[1], datetime(2026, 1, 7, tzinfo=UTC)),
        SubjectAssignment("s", "c", starts[2], starts[3]),
        SubjectAssignment("s", "d", starts[3]),
    ]
    catalog = Catalog(assignments=tuple(reversed(assignments)))

    bounds = datetime(2025, 12, 1), datetime(2026, 2, 1)  # noqa: DTZ001 - hypothesis wants naive bounds

    @given(st.datetimes(*bounds, timezones=st.just(UTC)))
    def check(at: datetime) -> None:
        linear = [a.customer for a in assignments if a.covers(at)]
        assert catalog.customer_for("s", at) == (linear[0] if linear else None)

    check()


# JSON for the compacted topic, and the version that identifies it.


def test_json_round_trip_is_exact() -> None:
    catalog = parsed(
        edited(
            'contract: {minimum_commitment: "1000.00"}',
            'contract: {reference: X, minimum_commitment: "1000.00"}',
        )
    )
    text = catalog.to_json()
    again = Catalog.from_json(text)
    assert again == catalog and again.to_json() == text and again.version == catalog.version
    assert again.customer_for("key_a", MOVE) == "globex"


def test_version_is_stable_and_ignores_layout_and_comments() -> None:
    catalog = parsed()
    assert len(catalog.version) == 16 and int(catalog.version, 16) >= 0
    assert parsed().version == catalog.version
    reordered = (
        edited(
            "  - {customer: acme, plan: pro-usd, effective_from: 2026-01-01T00:00:00Z}\n", "", BASE
        )
        + "  - {customer: acme, plan: pro-usd, effective_from: '2026-01-01T01:00:00+01:00'}  # moved\n"
    )
    assert parsed("# a comment\n" + reordered).version == catalog.version


@pytest.mark.parametrize(
    "old, new",
    [
        ("unit_amount: 0.000002", "unit_amount: 0.000003"),
        ("unit_amount: 0.000002", "unit_amount: 0.0000020"),
        (
            "effective_from: 2026-11-15T00:00:00Z}",
            "effective_from: 2026-11-15T00:00:00Z, effective_to: 2027-01-01T00:00:00Z}",
        ),
        ("name: Acme", "name: ACME"),
        ("anchor_day: 28", "anchor_day: 27"),
    ],
)
def test_version_changes_with_content(old: str, new: str) -> None:
    assert parsed(edited(old, new)).version != parsed().version


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"format": 3}',
        '{"format": 1, "meters": []}',
        Catalog().to_json().replace('"format":2', '"format":"2"'),
        Catalog().to_json().replace('"format":2', '"format":true'),
    ],
)
def test_from_json_rejects_what_is_not_a_catalog(text: str) -> None:
    with pytest.raises(ConfigError, match="not a catalog document"):
        Catalog.from_json(text)


def test_from_json_refuses_float_amounts() -> None:
    doc = json.loads(parsed().to_json())
    doc["plans"][0]["rate_card"][0]["unit_amount"] = 0.000002
    with pytest.raises(ConfigError, match="must be a string"):
        Catalog.from_json(json.dumps(doc))


# Hypothesis: any catalog survives JSON unchanged, to the digit and to the microsecond.

keys = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=12)
texts = st.text(max_size=20)
amounts = st.decimals(allow_nan=False, allow_infinity=False)
instants = st.datetimes(
    datetime(2000, 1, 1),  # noqa: DTZ001 - hypothesis wants naive bounds
    datetime(2100, 1, 1),  # noqa: DTZ001
    timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]
    ),
)
tiers = st.lists(st.builds(Tier, st.none() | amounts, amounts, amounts), max_size=4).map(tuple)
prices = st.one_of(
    st.builds(FlatPrice, keys, amounts, st.none() | keys),
    st.builds(UnitPrice, keys, keys, amounts, amounts),
    st.builds(GraduatedPrice, keys, keys, tiers, amounts),
    st.builds(VolumePrice, keys, keys, tiers, amounts),
    st.builds(PackagePrice, keys, keys, amounts, amounts, amounts),
    st.builds(
        DimensionPrice,
        keys,
        keys,
        st.lists(keys, max_size=3).map(tuple),
        st.lists(
            st.builds(DimensionRate, st.lists(texts, max_size=3).map(tuple), amounts), max_size=3
        ).map(tuple),
        st.none() | amounts,
        amounts,
    ),
)
rate_cards = st.lists(prices, max_size=4).map(tuple)
meters = st.builds(
    Meter,
    keys,
    keys,
    st.sampled_from(Aggregation),
    st.none() | keys,
    st.lists(keys, max_size=3).map(tuple),
    st.dictionaries(keys, st.lists(texts, max_size=2).map(tuple), max_size=2),
    texts,
)
profiles = st.builds(
    BillingProfile,
    st.sampled_from(sorted(MINOR_UNITS)),
    st.integers(1, 28),
    keys,
    st.sampled_from(Segment),
    keys,
    st.none() | texts,
)
grants = st.builds(
    CreditGrant,
    keys,
    amounts,
    st.sampled_from(sorted(MINOR_UNITS)),
    instants,
    st.none() | instants,
    st.integers(0, 1_000_000),
)
customers = st.builds(Customer, keys, texts, profiles, st.lists(grants, max_size=2).map(tuple))
catalogs = st.builds(
    Catalog,
    meters=st.lists(meters, max_size=3).map(tuple),
    customers=st.lists(customers, max_size=3).map(tuple),
    assignments=st.lists(
        st.builds(SubjectAssignment, keys, keys, instants, st.none() | instants), max_size=4
    ).map(tuple),
    plans=st.lists(
        st.builds(
            Plan,
            keys,
            st.sampled_from(sorted(MINOR_UNITS)),
            rate_cards,
            texts,
            st.none() | amounts,
            st.none() | amounts,
        ),
        max_size=3,
    ).map(tuple),
    subscriptions=st.lists(
        st.builds(
            Subscription,
            keys,
            keys,
            instants,
            st.none() | instants,
            st.none()
            | st.builds(
                Contract,
                st.none() | texts,
                st.none() | amounts,
                rate_cards,
                st.none() | amounts,
                st.none() | amounts,
            ),
        ),
        max_size=3,
    ).map(tuple),
    routing=st.lists(
        st.builds(RoutingRule, keys, st.none() | st.sampled_from(Segment), st.none() | keys),
        max_size=2,
    ).map(tuple),
    rounding=st.sampled_from(Rounding),
    credit_thresholds=st.lists(st.integers(1, 100), max_size=3).map(tuple),
)


@settings(max_examples=150, deadline=None)
@given(catalogs)
def test_any_catalog_survives_json_exactly(catalog: Catalog) -> None:
    text = catalog.to_json()
    again = Catalog.from_json(text)
    assert again == catalog
    assert again.to_json() == text
    assert again.version == catalog.version


@given(amounts)
def test_decimal_text_round_trips_without_loss(amount: Decimal) -> None:
    catalog = Catalog(plans=(Plan("p", "USD", (UnitPrice("u", "m", amount),)),))
    price = Catalog.from_json(catalog.to_json()).plans[0].rate_card[0]
    assert isinstance(price, UnitPrice) and str(price.unit_amount) == str(amount)


# Loading from disk, and the small path helpers.


def test_load_catalog_raises_with_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(
        edited("rail: stripe", "rail: Stripe").replace("anchor_day: 28", "anchor_day: 32")
    )
    with pytest.raises(ConfigError) as raised:
        load_catalog(path)
    message = str(raised.value)
    assert "2 problem(s)" in message
    assert f"{path}:7: customers[0].billing.rail" in message
    assert f"{path}:9: customers[1].billing.anchor_day" in message


def test_load_catalog_reads_a_clean_file(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(BASE)
    assert load_catalog(path) == parsed()
    with pytest.raises(ConfigError, match="cannot read catalog"):
        load_catalog(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    "path", [("plans", 1, "rate_card", 0, "tiers", 2, "up_to"), ("meters",), ()]
)
def test_paths_print_and_parse_back(path: tuple[str | int, ...]) -> None:
    assert parse_path(path_text(path)) == path
