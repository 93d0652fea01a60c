"""The batch oracle on a generated workload: one invoice per customer and period, noise ignored."""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from streams.domain.catalog import Catalog, parse_catalog
from streams.domain.invoice import LineKind
from streams.domain.rating import period_of_month
from streams.domain.rating.simulate import SimulationResult, simulate
from streams.domain.workload import Workload, WorkloadSpec, generate
from streams.domain.workload.catalog import billing_catalog_yaml

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "catalog.example.yaml"
START = datetime(2026, 11, 1, tzinfo=UTC)
AS_OF = datetime(2026, 12, 2, tzinfo=UTC)
SPEC = WorkloadSpec(
    seed=5,
    customers=6,
    events=3_000,
    start=START,
    duration=timedelta(days=30),
    duplicate_rate=0.05,
    invalid_rate=0.04,
    late_rate=0.02,
    unknown_subject_rate=0.02,
)


@pytest.fixture(scope="module")
def workload() -> Workload:
    return generate(SPEC)


@pytest.fixture(scope="module")
def catalog(workload: Workload) -> Catalog:
    text = billing_catalog_yaml(EXAMPLE.read_text(), workload.customers)
    catalog, problems = parse_catalog(text, "generated.yaml")
    assert catalog is not None, "\n".join(map(str, problems))
    return catalog


@pytest.fixture(scope="module")
def november(workload: Workload, catalog: Catalog) -> SimulationResult:
    return simulate(catalog, [g.line for g in workload.events], "2026-11", AS_OF)


def test_one_invoice_per_subscribed_customer_for_the_month(
    november: SimulationResult, catalog: Catalog
) -> None:
    assert [i.customer for i in november.invoices] == sorted(c.key for c in catalog.customers)
    for invoice in november.invoices:
        customer = catalog.customer(invoice.customer)
        assert customer is not None
        assert invoice.period_start == START and invoice.period_end == START.replace(month=12)
        assert (invoice.rail, invoice.currency) == (
            customer.billing.rail,
            customer.billing.currency,
        )
        assert invoice.subtotal == sum(line.amount for line in invoice.lines)
        assert invoice.total == invoice.subtotal - invoice.credits_total >= 0
    assert len({i.id for i in november.invoices}) == len(november.invoices)


def test_noise_is_counted_and_not_billed(november: SimulationResult) -> None:
    assert sum(november.rejected.values()) == SPEC.invalid
    assert november.duplicates == SPEC.duplicates
    assert november.unattributed == SPEC.unknown_subjects
    assert november.accepted == SPEC.events - SPEC.invalid - SPEC.duplicates
    # Each of them listed, in line order, and the counts are what the list says.
    reasons = Counter(n.reason.value for n in november.not_billed)
    assert reasons["duplicate"] == november.duplicates
    assert reasons["unattributed"] == november.unattributed
    assert reasons["rejected"] + reasons["too_old"] == SPEC.invalid
    lines = [n.line for n in november.not_billed]
    assert lines == sorted(lines) and len(set(lines)) == len(lines)


def test_the_invoices_depend_on_as_of_only_through_what_it_lets_in(
    workload: Workload, catalog: Catalog, november: SimulationResult
) -> None:
    lines = [g.line for g in workload.events]
    # Every November event is within 40 days of both instants: nothing else may change.
    later = simulate(catalog, lines, "2026-11", AS_OF + timedelta(days=8))
    assert later.invoices == november.invoices
    assert [(n.line, n.reason) for n in later.not_billed] == [
        (n.line, n.reason) for n in november.not_billed
    ]
    # Far later, November is too old: no usage is billed, and each event says why.
    stale = simulate(catalog, lines, "2026-11", AS_OF + timedelta(days=400))
    assert stale.accepted == 0
    assert Counter(n.reason.value for n in stale.not_billed)["too_old"] > SPEC.events * 0.9


def test_only_the_clean_lines_matter(
    workload: Workload, catalog: Catalog, november: SimulationResult
) -> None:
    clean = [
        g.line
        for g in workload.events
        if g.valid and g.duplicate_of is None and g.customer is not None
    ]
    assert len(clean) < len(workload.events)
    again = simulate(catalog, clean, "2026-11", AS_OF)
    assert again.invoices == november.invoices
    assert (again.rejected, again.duplicates, again.unattributed) == ({}, 0, 0)


def test_the_order_of_lines_does_not_matter(
    workload: Workload, catalog: Catalog, november: SimulationResult
) -> None:
    lines = [g.line for g in workload.events]
    random.Random(3).shuffle(lines)
    assert simulate(catalog, lines, "2026-11", AS_OF).invoices == november.invoices


def test_usage_lines_bill_what_the_clean_events_measured(
    workload: Workload, november: SimulationResult
) -> None:
    measured: Counter[tuple[str, str]] = Counter()
    for g in workload.events:
        if g.valid and g.duplicate_of is None and g.customer is not None and g.event:
            if g.event["type"] == "api.calls":
                measured[(g.customer, "api_calls")] += int(g.event["data"]["calls"])
    usage: Counter[tuple[str, str]] = Counter()
    for customer, events in november.usage.items():
        for event in events.events.get("api_calls", ()):
            usage[(customer, "api_calls")] += int(event.value)
    assert usage == measured
    metered = {
        (i.customer, line.meter)
        for i in november.invoices
        for line in i.lines
        if line.kind is LineKind.USAGE
    }
    assert {key for key, calls in measured.items() if calls} <= metered


def test_without_a_period_every_touched_period_is_rated(
    workload: Workload, catalog: Catalog, november: SimulationResult
) -> None:
    lines = [g.line for g in workload.events]
    touched = simulate(catalog, lines, None, AS_OF)
    assert touched.invoices == november.invoices  # all usage falls in November
    nov = period_of_month(1, "2026-11")
    assert simulate(catalog, lines, nov, AS_OF).invoices == november.invoices


def test_bad_lines_are_rejected_like_ingest_does(catalog: Catalog, workload: Workload) -> None:
    good = next(g for g in workload.events if g.valid and g.customer and g.duplicate_of is None)
    assert good.event is not None
    old = dict(good.event, id="old-one", time="2026-01-01T00:00:00Z")
    unknown = dict(good.event, id="other-type", type="no.such.meter")
    result = simulate(
        catalog,
        ["", "not json", "{broken", json.dumps(old), json.dumps(unknown), good.line, good.line],
        "2026-11",
        AS_OF,
    )
    assert result.rejected == {
        "malformed_payload": 2,
        "timestamp_out_of_range": 1,
        "unknown_meter": 1,
    }
    assert (result.duplicates, result.accepted) == (1, 1)
