"""Workloads drawn from a catalog: every event bills to the customer owning its subject."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from textwrap import dedent

import pytest

from connectors.files import load_catalog
from streams.domain.catalog import Catalog, parse_catalog
from streams.domain.errors import ConfigError
from streams.domain.workload import (
    EventType,
    WorkloadSpec,
    catalog_population,
    generate,
    iter_events,
)
from streams.settings import PROJECT_ROOT

EXAMPLE = load_catalog(PROJECT_ROOT / "deploy" / "catalog.example.yaml")
CATALOG = dedent(
    """\
    meters:
      - {key: api_calls, event_type: api.calls, aggregation: SUM, value_property: calls}
      - {key: seats, event_type: seats.active, aggregation: MAX, value_property: seats}
    customers:
      - key: acme
        billing: {currency: USD, rail: stripe, segment: self_service, region: us-east-1}
      - key: globex
        billing: {currency: EUR, rail: netsuite, segment: enterprise, region: eu-west-1}
      - key: newcomer
        billing: {currency: USD, rail: stripe, segment: self_service, region: us-east-1}
    subjects:
      - {customer: acme, subject: key_moves, effective_from: 2026-01-01T00:00:00Z, effective_to: 2026-11-15T00:00:00Z}
      - {customer: globex, subject: key_moves, effective_from: 2026-11-15T00:00:00Z}
      - {customer: acme, subjects: [key_acme, ws_acme], effective_from: 2026-01-01T00:00:00Z}
      - {customer: globex, subject: key_gap, effective_from: 2026-01-01T00:00:00Z, effective_to: 2026-11-10T00:00:00Z}
      - {customer: globex, subject: key_gap, effective_from: 2026-11-12T00:00:00Z}
      - {customer: globex, subject: key_globex, effective_from: 2026-01-01T00:00:00Z}
      - {customer: newcomer, subject: key_new, effective_from: 2026-11-20T00:00:00Z}
    """
)
START = datetime(2026, 11, 1, tzinfo=UTC)
END = datetime(2026, 12, 1, tzinfo=UTC)


def _catalog(text: str = CATALOG) -> Catalog:
    catalog, problems = parse_catalog(text, "test")
    assert catalog is not None, problems
    return catalog


def _spec(customers: int, seed: int, events: int = 3_000) -> WorkloadSpec:
    return WorkloadSpec(
        seed=seed,
        customers=customers,
        events=events,
        start=START,
        duration=END - START,
        duplicate_rate=0.05,
        invalid_rate=0.02,
        late_rate=0.02,
    )


@pytest.mark.parametrize("seed", [7, 8, 42, 2026])
def test_every_valid_event_bills_to_the_catalog_customer_owning_its_subject_then(
    seed: int,
) -> None:
    population = catalog_population(EXAMPLE, seed, START, END)
    workload = generate(_spec(len(population.customers), seed), population)

    valid = [g for g in workload.events if g.valid and g.event is not None]
    assert len(valid) > 2_500
    for g in valid:
        assert g.event is not None
        at = datetime.fromisoformat(g.event["time"])
        assert EXAMPLE.customer_for(g.event["subject"], at) == g.customer, g.line


def test_the_example_catalog_gives_every_customer_its_own_subjects() -> None:
    population = catalog_population(EXAMPLE, 7, START, END)

    assert sorted(c.name for c in population.customers) == sorted(c.key for c in EXAMPLE.customers)
    for profile in population.customers:
        owned = set(EXAMPLE.subjects_of(profile.name, START))
        assert set(profile.subjects) <= owned, profile.name
        assert EventType.API_CALLS in profile.event_types
        assert all(w.startswith("ws_") for w in profile.workspaces)
    # Hooli's inference key moves to Gringotts on November 15: credited to each in turn.
    assert [owner for _, owner in population.moves["key_746aa50c7136b7bd"]] == [
        "hooli-systems",
        "gringotts-systems",
    ]
    # Enterprise customers first, with the largest volume shares.
    shares = [c.weight for c in population.customers]
    assert shares == sorted(shares, reverse=True)
    assert population.customers[0].segment == "enterprise"


def test_only_subjects_owned_for_the_whole_span_are_used() -> None:
    population = catalog_population(_catalog(), 1, START, END)
    by_name = {c.name: c for c in population.customers}

    # key_gap has no customer from Nov 10 to 12; key_new none before Nov 20.
    assert sorted(by_name) == ["acme", "globex"]
    assert by_name["acme"].subjects == ("key_acme", "key_moves", "ws_acme")
    assert by_name["acme"].workspaces == ("ws_acme",)
    assert by_name["globex"].subjects == ("key_globex",)
    assert population.owner_at("key_moves", _us(START)) == "acme"
    assert population.owner_at("key_moves", _us(datetime(2026, 11, 15, tzinfo=UTC))) == "globex"
    assert population.owner_at("key_acme", _us(END)) == "acme"
    assert population.owner_at("key_gap", _us(END)) is None


def test_a_moving_subject_bills_to_each_owner_in_turn() -> None:
    catalog = _catalog()
    population = catalog_population(catalog, 3, START, END)
    events = [g for g in iter_events(_spec(2, 3), population) if g.valid and g.event]
    moved = [g for g in events if g.event and g.event["subject"] == "key_moves"]

    assert {g.customer for g in moved} == {"acme", "globex"}
    for g in events:
        assert g.event is not None
        at = datetime.fromisoformat(g.event["time"])
        assert catalog.customer_for(g.event["subject"], at) == g.customer


def test_the_same_catalog_and_spec_give_the_same_lines() -> None:
    population = catalog_population(EXAMPLE, 11, START, END)
    spec = _spec(len(population.customers), 11, events=500)

    first = [g.line for g in iter_events(spec, population)]
    again = [g.line for g in iter_events(spec, catalog_population(EXAMPLE, 11, START, END))]

    assert first == again
    assert first != [g.line for g in iter_events(spec)], "the catalog's subjects, not made up"


def test_a_catalog_without_a_customer_for_the_span_is_refused() -> None:
    with pytest.raises(ConfigError, match="owns a subject for the whole span"):
        catalog_population(
            EXAMPLE, 7, datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC)
        )


def test_a_catalog_that_meters_no_api_calls_is_refused() -> None:
    text = CATALOG.replace(
        "{key: api_calls, event_type: api.calls, aggregation: SUM, value_property: calls}",
        "{key: api_calls, event_type: api.calls, aggregation: SUM, value_property: requests}",
    )
    with pytest.raises(ConfigError, match="meters no api.calls"):
        catalog_population(_catalog(text), 7, START, END)


def test_seats_are_read_only_when_the_catalog_meters_them() -> None:
    text = CATALOG.replace(
        "  - {key: seats, event_type: seats.active, aggregation: MAX, value_property: seats}\n", ""
    )
    population = catalog_population(_catalog(text), 1, START, START + timedelta(days=1))
    acme = next(c for c in population.customers if c.name == "acme")

    assert acme.workspaces == ()
    assert "ws_acme" in acme.api_keys
    assert EventType.SEATS_ACTIVE not in acme.event_types


def _us(at: datetime) -> int:
    return int(at.timestamp()) * 1_000_000
