"""``railyard explain``'s pure parts: the arithmetic it writes out, and the query that
recomputes a line from its events (the run against real data is the e2e demo's)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from connectors.clickhouse.explain import evidence_sql
from streams.cli.explain import _included
from streams.domain.invoice import TierSlice
from streams.domain.meters import Aggregation, Meter
from streams.domain.rating.explain import tier_arithmetic, unit_arithmetic

D = Decimal
NOV, DEC = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)


def test_graduated_slices_add_up_to_the_rounded_amount() -> None:
    tiers = (
        TierSlice(D(1000), D(1000), D(0), D(0), D(0)),
        TierSlice(None, D(2500), D("0.0021"), D("5"), D("10.25")),
    )
    maths = tier_arithmetic(tiers, D("10.25"), "EUR")
    assert maths.holds and maths.unrounded == D("10.25")
    assert maths.steps[1] == "2,500 and above x 0.0021 + 5 flat = 10.2500"
    assert not tier_arithmetic(tiers, D("10.27"), "EUR").holds  # two cents off: caught


def test_a_slice_whose_product_is_not_its_amount_is_flagged() -> None:
    wrong = (TierSlice(None, D(3), D("2.00"), D(0), D("7.00")),)
    maths = tier_arithmetic(wrong, D("7.00"), "USD")
    assert not maths.holds and "the slice says 7.00" in maths.steps[0]


@pytest.mark.parametrize(
    ("currency", "amount", "holds"),
    [("JPY", D("1"), True), ("JPY", D("2"), False), ("KWD", D("0.667"), True)],
)
def test_per_unit_rounds_once_to_the_minor_unit(
    currency: str, amount: Decimal, holds: bool
) -> None:
    maths = unit_arithmetic(D(2), D("0.3333333"), amount, currency)
    assert maths.unrounded == D("0.6666666") and maths.holds is holds


def test_the_included_units_a_line_states_are_read_back() -> None:
    assert _included("ai_tokens, 15780.000000000 included") == D("15780")
    assert _included("ai_tokens (model=gpt-4o)") == 0


def test_the_query_groups_by_the_meter_and_filters_by_the_line() -> None:
    meter = Meter(
        "active_seats",
        "seats.active",
        Aggregation.MAX,
        "seats",
        group_by=("workspace",),
        filters={"plan": ("pro", "team")},
    )
    sql = evidence_sql(meter, "o'brien", {"region": "eu"}, NOV, DEC)
    assert "customer = 'o\\'brien'" in sql and "type = 'seats.active'" in sql
    assert "max(values['seats'])" in sql and "mapContains(values, 'seats')" in sql
    assert "IN ('pro', 'team')" in sql and "= 'eu'" in sql
    assert sql.endswith(
        "GROUP BY if(mapContains(dimensions, 'workspace'), dimensions['workspace'],"
        " toString(values['workspace']))"
    )
    assert "time >= toDateTime64('2026-11-01T00:00:00+00:00'" in sql
    assert "time < toDateTime64('2026-12-01T00:00:00+00:00'" in sql


def test_counting_and_averaging_queries() -> None:
    count = evidence_sql(Meter("calls", "api.call", Aggregation.COUNT), "c", {}, NOV, DEC)
    assert "toString(count()), 1" in count and "mapContains(values" not in count
    assert count.endswith("GROUP BY ''")
    avg = evidence_sql(Meter("lat", "api.call", Aggregation.AVG, "ms"), "c", {}, NOV, DEC)
    assert "toString(sum(values['ms'])), count()" in avg
