"""Prepaid credit: which grants pay, in which order, what is left, and alerts that fire once."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.domain.catalog import CreditGrant
from streams.domain.invoice import CreditApplication
from streams.domain.rating import period_of_month
from streams.domain.rating.credits import (
    CreditEvent,
    CreditEventKind,
    apply_credits,
    balances,
    burn_order,
    consumed_after,
    threshold_events,
    usable,
)

D = Decimal
NOV = period_of_month(1, "2026-11")


def t(month: int, day: int = 1, year: int = 2026) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)


def grant(
    key: str,
    amount: str,
    *,
    start: datetime | None = None,
    expires: datetime | None = None,
    priority: int = 100,
    currency: str = "USD",
) -> CreditGrant:
    return CreditGrant(key, D(amount), currency, start or t(1), expires, priority)


GRANTS = (
    grant("expired", "50.00", expires=t(11)),  # ended as the period began
    grant("future", "50.00", start=t(12)),  # starts as the period ends
    grant("euros", "50.00", currency="EUR", priority=0),
    grant("open-ended", "30.00", priority=5),
    grant("soon", "10.00", priority=5, expires=t(12, 15)),
    grant("urgent", "4.00", priority=1, start=t(11, 30)),  # effective on the last day
    grant("spent", "20.00", priority=0),
    grant("late-expiry", "25.00", priority=5, expires=t(3, year=2027)),
    grant("bulk", "1000.00"),
)


def test_only_grants_overlapping_the_period_in_its_currency_are_usable() -> None:
    assert [g.key for g in GRANTS if usable(g, NOV, "USD")] == [
        "open-ended",
        "soon",
        "urgent",
        "spent",
        "late-expiry",
        "bulk",
    ]


def test_burn_order_is_priority_then_earliest_expiry_then_key() -> None:
    ordered = sorted(GRANTS, key=burn_order)
    assert [g.key for g in ordered] == [
        "euros",
        "spent",
        "urgent",
        "soon",
        "late-expiry",
        "open-ended",  # never expires: last among priority 5
        "expired",
        "bulk",
        "future",
    ]


def test_credits_burn_across_grants_in_order_partially_and_skip_what_is_spent() -> None:
    consumed = {"spent": D("20.00"), "soon": D("3.50")}
    applied = apply_credits(GRANTS, consumed, D("60.00"), NOV, currency="USD")
    assert applied == (
        CreditApplication("urgent", D("4.00")),
        CreditApplication("soon", D("6.50")),
        CreditApplication("late-expiry", D("25.00")),
        CreditApplication("open-ended", D("24.50")),  # partial: 5.50 left on it
    )
    assert sum(a.amount for a in applied) == D("60.00")
    after = consumed_after(consumed, applied)
    assert after == {
        "spent": D("20.00"),
        "soon": D("10.00"),
        "urgent": D("4.00"),
        "late-expiry": D("25.00"),
        "open-ended": D("24.50"),
    }


def test_credit_never_exceeds_what_is_due_nor_what_is_left() -> None:
    assert apply_credits(GRANTS, {}, D(0), NOV, currency="USD") == ()
    assert apply_credits(GRANTS, {}, D("-5.00"), NOV, currency="USD") == ()
    everything = {g.key: g.amount for g in GRANTS}
    assert apply_credits(GRANTS, everything, D("10.00"), NOV, currency="USD") == ()
    small = (grant("a", "3.00"),)
    assert apply_credits(small, {}, D("10.00"), NOV, currency="USD") == (
        CreditApplication("a", D("3.00")),
    )
    overdrawn = {"a": D("4.00")}  # more consumed than granted: nothing left, not negative
    assert apply_credits(small, overdrawn, D("10.00"), NOV, currency="USD") == ()


def test_other_currencies_never_pay() -> None:
    assert apply_credits(GRANTS, {}, D("10.00"), NOV, currency="EUR") == (
        CreditApplication("euros", D("10.00")),
    )
    assert apply_credits(GRANTS, {}, D("10.00"), NOV, currency="JPY") == ()


def test_balances_show_what_is_left_and_nothing_once_expired() -> None:
    consumed = {"soon": D("3.50"), "bulk": D("1000.00")}
    assert balances(GRANTS, consumed, t(11, 20)) == {
        "expired": D(0),
        "future": D("50.00"),  # not spendable yet, but owed
        "euros": D("50.00"),
        "open-ended": D("30.00"),
        "soon": D("6.50"),
        "urgent": D("4.00"),
        "spent": D("20.00"),
        "late-expiry": D("25.00"),
        "bulk": D(0),
    }
    assert balances(GRANTS, consumed, t(12, 15))["soon"] == 0  # expires_at is exclusive


def event(key: str, kind: str, percent: int, remaining: str) -> CreditEvent:
    return CreditEvent("acme", key, CreditEventKind(kind), percent, D(remaining), "USD", t(12))


def alerts(
    grants: tuple[CreditGrant, ...],
    before: dict[str, Decimal],
    after: dict[str, Decimal],
    thresholds: tuple[int, ...] = (50, 80, 100),
) -> list[CreditEvent]:
    return threshold_events(grants, before, after, thresholds, customer="acme", at=t(12))


def test_thresholds_fire_once_when_crossed() -> None:
    g = (grant("g", "100.00"),)
    assert alerts(g, {}, {"g": D("49.99")}) == []
    assert alerts(g, {}, {"g": D("50.00")}) == [event("g", "threshold", 50, "50.00")]
    assert alerts(g, {"g": D("50.00")}, {"g": D("79.00")}) == []  # 50 already fired
    assert alerts(g, {"g": D("50.00")}, {"g": D("100.00")}) == [
        event("g", "threshold", 80, "0.00"),
        event("g", "exhausted", 100, "0.00"),
    ]
    assert alerts(g, {"g": D("100.00")}, {"g": D("100.00")}) == []
    assert alerts(g, {"g": D("90.00")}, {"g": D("60.00")}) == []  # going back fires nothing


def test_exhaustion_fires_even_without_a_100_threshold_and_only_for_crossings() -> None:
    gs = (grant("a", "10.00", priority=1), grant("b", "3.00", priority=2))
    assert alerts(gs, {}, {"a": D("10.00"), "b": D("0.50")}, thresholds=(25,)) == [
        event("a", "threshold", 25, "0.00"),
        event("a", "exhausted", 100, "0.00"),
    ]
    assert alerts(gs, {}, {"a": D("2.50")}, thresholds=()) == []


def test_thresholds_compare_exactly() -> None:
    g = (grant("g", "3.00"),)
    assert alerts(g, {}, {"g": D("1.49")}) == []
    assert alerts(g, {}, {"g": D("1.50")}) == [event("g", "threshold", 50, "1.50")]
    assert alerts(g, {}, {"g": D("2.40")}) == [
        event("g", "threshold", 50, "0.60"),
        event("g", "threshold", 80, "0.60"),
    ]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(0, 10_000), min_size=1, max_size=4),
    st.lists(st.integers(0, 5_000), max_size=8),
)
def test_burning_invoice_by_invoice_fires_each_threshold_at_most_once(
    amounts: list[int], dues: list[int]
) -> None:
    grants = tuple(grant(f"g{i}", f"{a / 100:.2f}") for i, a in enumerate(amounts) if a)
    consumed: dict[str, Decimal] = {}
    fired: list[tuple[str, str, int]] = []
    for due in dues:
        applied = apply_credits(grants, consumed, D(due) / 100, NOV, currency="USD")
        assert sum((a.amount for a in applied), D(0)) <= D(due) / 100
        after = consumed_after(consumed, applied)
        fired += [(e.grant, e.kind, e.percent) for e in alerts(grants, consumed, after)]
        consumed = after
    assert len(fired) == len(set(fired))
    for g in grants:
        assert consumed.get(g.key, D(0)) <= g.amount
        exhausted = (g.key, "exhausted", 100) in fired
        assert exhausted == (consumed.get(g.key, D(0)) == g.amount)


@pytest.mark.parametrize("kind", list(CreditEventKind))
def test_event_kinds_are_the_contract_values(kind: CreditEventKind) -> None:
    assert kind.value in ("threshold", "exhausted")
