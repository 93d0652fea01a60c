"""The demo catalog stays in step with the synthetic workload it bills."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from connectors.files import load_catalog
from streams.domain.catalog import Catalog
from streams.domain.workload import DEFAULT_START, WorkloadSpec, customer_profiles, subject_owners

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "catalog.example.yaml"
DEMO = customer_profiles(WorkloadSpec(seed=7, customers=12))
MOVE = datetime(2026, 11, 15, tzinfo=UTC)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(EXAMPLE)  # raises, listing every problem, unless it validates clean


def test_the_example_has_exactly_the_generators_customers_and_subjects(catalog: Catalog) -> None:
    assert {c.key for c in catalog.customers} == {p.name for p in DEMO}
    assert {a.subject for a in catalog.assignments} == set(subject_owners(DEMO))


def test_every_subject_bills_to_its_generator_owner_when_the_workload_starts(
    catalog: Catalog,
) -> None:
    for subject, owner in subject_owners(DEMO).items():
        assert catalog.customer_for(subject, DEFAULT_START) == owner, subject


def test_customers_keep_their_profiles_segment_currency_and_region(catalog: Catalog) -> None:
    for profile in DEMO:
        customer = catalog.customer(profile.name)
        assert customer is not None, profile.name
        billing = customer.billing
        assert (billing.segment.value, billing.currency, billing.region) == (
            profile.segment.value,
            profile.currency,
            profile.region,
        )
        self_service = {"stripe", "adyen", "paypal", "webhook"}  # cards, or their own system
        assert (billing.rail in self_service) == (profile.segment == "self_service"), profile.name


def test_the_demo_bills_through_all_eight_rails(catalog: Catalog) -> None:
    from connectors.rails.registry import rails

    assert {c.billing.rail for c in catalog.customers} == set(rails())


def test_one_subject_moves_to_another_customer_on_november_15(catalog: Catalog) -> None:
    owners = {
        a.subject: {b.customer for b in catalog.assignments if b.subject == a.subject}
        for a in catalog.assignments
    }
    moved = [s for s, customers in owners.items() if len(customers) > 1]
    assert len(moved) == 1
    before = catalog.customer_for(moved[0], MOVE - timedelta(microseconds=1))
    after = catalog.customer_for(moved[0], MOVE)
    assert before is not None and after is not None and before != after
    assert any(len(catalog.subjects_of(c.key, MOVE)) >= 2 for c in catalog.customers)


def test_every_customer_is_subscribed_in_its_own_currency_when_the_workload_starts(
    catalog: Catalog,
) -> None:
    for customer in catalog.customers:
        sub = catalog.subscription_for(customer.key, DEFAULT_START)
        assert sub is not None, customer.key
        plan = catalog.plan(sub.plan)
        assert plan is not None and plan.currency == customer.billing.currency
        if customer.billing.segment == "enterprise":
            assert sub.contract is not None and sub.contract.minimum_commitment
            assert sub.contract.prices, "enterprise contracts carry custom prices"


def test_the_example_exercises_every_rating_term(catalog: Catalog) -> None:
    assert catalog.rounding == "half_even" and catalog.credit_thresholds == (50, 80, 100)
    granted = [c for c in catalog.customers if c.credits]
    assert len(granted) >= 2
    for customer in granted:
        assert customer.billing.segment == "self_service"
        assert all(g.currency == customer.billing.currency for g in customer.credits)
    # One grant is smaller than the plan fee its holder pays each period: used up in a month.
    fees = {
        c.key: sum(
            (
                p.amount
                for p in catalog.rate_card_for(c.key, DEFAULT_START) or ()
                if p.model == "flat"
            ),
            Decimal(0),
        )
        for c in granted
    }
    assert any(g.amount < fees[c.key] for c in granted for g in c.credits)
    prices = [p for plan in catalog.plans for p in plan.rate_card]
    assert any(getattr(p, "included", 0) > 0 for p in prices)
    contracts = [s.contract for s in catalog.subscriptions if s.contract]
    assert any(c.discount_percent for c in contracts)
    assert any(p.maximum_spend for p in catalog.plans) or any(c.maximum_spend for c in contracts)
