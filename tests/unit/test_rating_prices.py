"""Price models, the registry and period quantities (streams/domain/rating)."""

from __future__ import annotations

import ast
from collections.abc import Sequence
from decimal import Context, Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.domain.catalog.prices import (
    DimensionPrice,
    DimensionRate,
    FlatPrice,
    GraduatedPrice,
    PackagePrice,
    Price,
    PriceModel,
    Tier,
    UnitPrice,
    VolumePrice,
)
from streams.domain.errors import RailyardError
from streams.domain.invoice import TierSlice
from streams.domain.rating import (
    PRICERS,
    DimensionPricer,
    FlatPricer,
    GraduatedPricer,
    PackagePricer,
    Priced,
    UnitPricer,
    UnpricedUsage,
    VolumePricer,
    packages,
    price_usage,
    rating_context,
    round_money,
)

D = Decimal
# Free up to 1000; 0.01 (plus 5 on entry) up to 5000; then 0.005 (plus 1 on entry).
TIERS = (
    Tier(D(1000), D(0)),
    Tier(D(5000), D("0.01"), D(5)),
    Tier(None, D("0.005"), D(1)),
)
# Every tier has a unit price, so graduated and volume part ways above 100.
STEPS = (Tier(D(100), D("1.00")), Tier(D(200), D("0.50")), Tier(None, D("0.25")))
GRAD = GraduatedPrice("api", "requests", TIERS)
VOL = VolumePrice("api", "requests", TIERS)
TOKENS = UnitPrice("tokens", "llm_tokens", D("0.000002"))
PACK = PackagePrice("sms", "sms_sent", D(1000), D("2.50"))
FEE = FlatPrice("platform", D("49.00"))
LLM = DimensionPrice(
    "llm",
    "llm_tokens",
    ("model", "direction"),
    (
        DimensionRate(("gpt", "input"), D("0.000002")),
        DimensionRate(("gpt", "output"), D("0.000008")),
    ),
)

SAMPLES: dict[PriceModel, Price] = {
    PriceModel.FLAT: FEE,
    PriceModel.PER_UNIT: TOKENS,
    PriceModel.GRADUATED: GRAD,
    PriceModel.VOLUME: VOL,
    PriceModel.PACKAGE: PACK,
    PriceModel.DIMENSION: LLM,
}


def slice_(up_to: int | None, quantity: str, unit: str, flat: str, amount: str) -> TierSlice:
    return TierSlice(None if up_to is None else D(up_to), D(quantity), D(unit), D(flat), D(amount))


# --- registry --------------------------------------------------------------------------------


def test_registry_covers_every_price_model() -> None:
    assert set(PRICERS) == set(PriceModel)
    assert set(SAMPLES) == set(PriceModel)


@pytest.mark.parametrize(
    ("model", "pricer"),
    [
        (PriceModel.FLAT, FlatPricer),
        (PriceModel.PER_UNIT, UnitPricer),
        (PriceModel.GRADUATED, GraduatedPricer),
        (PriceModel.VOLUME, VolumePricer),
        (PriceModel.PACKAGE, PackagePricer),
        (PriceModel.DIMENSION, DimensionPricer),
    ],
)
def test_registry_dispatches_each_model_to_its_pricer(model: PriceModel, pricer: type) -> None:
    assert isinstance(PRICERS[model], pricer)
    assert SAMPLES[model].model is model
    dims = {"model": "gpt", "direction": "input"}
    expected = PRICERS[model].price(SAMPLES[model], D(1234), dims)
    assert price_usage(SAMPLES[model], D(1234), dims) == expected


def test_registry_is_read_only() -> None:
    with pytest.raises(TypeError):
        PRICERS[PriceModel.FLAT] = UnitPricer()  # type: ignore[index]


def test_priced_fields_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        Priced(D(1), None, D(1))  # type: ignore[call-arg]


# --- flat ------------------------------------------------------------------------------------


@pytest.mark.parametrize("quantity", ["0", "1", "999.5", "1000000000000"])
def test_flat_charges_its_amount_whatever_the_quantity(quantity: str) -> None:
    assert price_usage(FEE, D(quantity)) == Priced(
        amount=D("49.00"), unit_amount=None, quantity=D(quantity)
    )


def test_flat_is_not_reduced_by_included_units() -> None:
    assert price_usage(FEE, D(10), included=D(100)).amount == D("49.00")


# --- per unit --------------------------------------------------------------------------------


def test_per_unit_keeps_the_unit_price_places_and_rounds_only_at_the_end() -> None:
    priced = price_usage(TOKENS, D(1_234_567))
    assert priced == Priced(amount=D("2.469134"), unit_amount=D("0.000002"), quantity=D(1_234_567))
    assert round_money(priced.amount, "USD") == D("2.47")


@pytest.mark.parametrize(
    ("quantity", "amount"),
    [("0", "0"), ("1", "0.000002"), ("0.5", "0.000001"), ("1000000000", "2000")],
)
def test_per_unit_amounts(quantity: str, amount: str) -> None:
    assert price_usage(TOKENS, D(quantity)).amount == D(amount)


def test_per_unit_is_exact_beyond_28_digits() -> None:
    quantity = D("123456789012345678901234567890.123456789")
    exact = D("246913578024691357802469.135780246913578")
    assert price_usage(TOKENS, quantity).amount == exact
    # What the default 28-digit context would have produced, silently.
    assert Context(prec=28).multiply(quantity, TOKENS.unit_amount) != exact


# --- graduated -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quantity", "amount", "tiers_used"),
    [
        ("0", "0", 0),
        ("0.000000001", "0", 1),
        ("999.999999999", "0", 1),
        ("1000", "0", 1),
        ("1000.000000001", "5.00000000001", 2),
        ("1001", "5.01", 2),
        ("4999.999999999", "44.99999999999", 2),
        ("5000", "45", 2),
        ("5000.000000001", "46.000000000005", 3),
        ("10000", "71", 3),
    ],
)
def test_graduated_at_and_around_every_bound(quantity: str, amount: str, tiers_used: int) -> None:
    priced = price_usage(GRAD, D(quantity))
    assert priced.amount == D(amount)
    assert priced.unit_amount is None
    assert len(priced.tiers) == tiers_used
    assert sum((s.quantity for s in priced.tiers), D(0)) == D(quantity)
    assert sum((s.amount for s in priced.tiers), D(0)) == priced.amount


def test_graduated_slices_in_full() -> None:
    assert price_usage(GRAD, D(6000)).tiers == (
        slice_(1000, "1000", "0", "0", "0"),
        slice_(5000, "4000", "0.01", "5", "45"),
        slice_(None, "1000", "0.005", "1", "6"),
    )


def test_graduated_flat_amount_is_charged_once_on_entering_a_tier() -> None:
    # Entering the second tier adds its 5 at once; more units there add only unit prices.
    assert price_usage(GRAD, D("1000.000000001")).amount - price_usage(GRAD, D(1000)).amount == D(
        "5.00000000001"
    )
    assert price_usage(GRAD, D(1002)).amount - price_usage(GRAD, D(1001)).amount == D("0.01")


def test_graduated_first_tier_flat_amount_needs_some_usage() -> None:
    price = GraduatedPrice("g", "m", (Tier(D(10), D(1), D(7)), Tier(None, D(0))))
    assert price_usage(price, D(0)).amount == 0
    assert price_usage(price, D("0.1")).amount == D("7.1")
    assert price_usage(price, D(10)).amount == D(17)
    assert price_usage(price, D(11)).amount == D(17)


def test_graduated_and_volume_part_ways() -> None:
    grad, vol = GraduatedPrice("s", "m", STEPS), VolumePrice("s", "m", STEPS)
    cases = [  # quantity, graduated, volume
        ("100", "100.00", "100.00"),
        ("100.000000001", "100.000000000500", "50.0000000005"),
        ("150", "125.00", "75.00"),
        ("200", "150.00", "100.00"),
        ("200.000000001", "150.00000000025", "50.00000000025"),
        ("250", "162.50", "62.50"),
    ]
    for quantity, graduated, volume in cases:
        assert price_usage(grad, D(quantity)).amount == D(graduated), quantity
        assert price_usage(vol, D(quantity)).amount == D(volume), quantity


# --- volume ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quantity", "amount", "unit", "up_to"),
    [
        ("0.000000001", "0", "0", 1000),
        ("999.999999999", "0", "0", 1000),
        ("1000", "0", "0", 1000),
        ("1000.000000001", "15.00000000001", "0.01", 5000),
        ("4999.999999999", "54.99999999999", "0.01", 5000),
        ("5000", "55", "0.01", 5000),
        ("5000.000000001", "26.000000000005", "0.005", None),
        ("10000", "51", "0.005", None),
    ],
)
def test_volume_at_and_around_every_bound(
    quantity: str, amount: str, unit: str, up_to: int | None
) -> None:
    priced = price_usage(VOL, D(quantity))
    assert priced.amount == D(amount)
    assert priced.unit_amount == D(unit)
    (only,) = priced.tiers
    assert only.up_to == (None if up_to is None else D(up_to))
    assert only.quantity == D(quantity)
    assert only.amount == priced.amount


def test_volume_zero_usage_costs_nothing_even_with_a_flat_first_tier() -> None:
    price = VolumePrice("v", "m", (Tier(D(10), D(1), D(7)), Tier(None, D("0.5"), D(3))))
    assert price_usage(price, D(0)) == Priced(amount=D(0), unit_amount=None, quantity=D(0))
    assert price_usage(price, D(10)).amount == D(17)
    assert price_usage(price, D(12)).amount == D(9)


# --- package ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quantity", "amount"),
    [
        ("0", "0"),
        ("0.000000001", "2.50"),
        ("1", "2.50"),
        ("999", "2.50"),
        ("999.999999999", "2.50"),
        ("1000", "2.50"),
        ("1000.000000001", "5.00"),
        ("1001", "5.00"),
        ("2000", "5.00"),
        ("2001", "7.50"),
    ],
)
def test_package_charges_every_started_block(quantity: str, amount: str) -> None:
    priced = price_usage(PACK, D(quantity))
    assert priced == Priced(amount=D(amount), unit_amount=None, quantity=D(quantity))


@pytest.mark.parametrize(
    ("quantity", "size", "blocks"),
    [("1.2", "0.5", 3), ("1.5", "0.5", 3), ("0", "0.5", 0), ("7", "7", 1), ("8", "7", 2)],
)
def test_packages_with_fractional_sizes(quantity: str, size: str, blocks: int) -> None:
    assert packages(D(quantity), D(size)) == blocks


def test_packages_is_exact_where_division_would_round() -> None:
    # q / 3 = 10**59 + 1/3 rounds to 10**59 at 60 digits; divmod stays exact.
    with rating_context():
        quantity = 3 * D(10) ** 59 + 1
        assert (quantity / 3).to_integral_value() == D(10) ** 59
        assert packages(quantity, D(3)) == D(10) ** 59 + 1
        assert packages(D(10) ** 40 + 1, D(10) ** 40) == 2


@pytest.mark.parametrize("size", ["0", "-1"])
def test_package_size_must_be_positive(size: str) -> None:
    with pytest.raises(ValueError, match="package size"):
        packages(D(1), D(size))


# --- dimension -------------------------------------------------------------------------------


def test_dimension_picks_the_rate_of_the_usage_values() -> None:
    dims = {"model": "gpt", "direction": "output", "region": "eu"}
    assert price_usage(LLM, D(1_000_000), dims) == Priced(
        amount=D("8.000000"), unit_amount=D("0.000008"), quantity=D(1_000_000)
    )
    assert price_usage(LLM, D(1_000_000), {"direction": "input", "model": "gpt"}).amount == D(2)


def test_dimension_falls_back_to_the_default() -> None:
    price = DimensionPrice("llm", "llm_tokens", LLM.dimensions, LLM.rates, D("0.000001"))
    assert price_usage(price, D(3_000_000), {"model": "claude", "direction": "input"}) == Priced(
        amount=D("3.000000"), unit_amount=D("0.000001"), quantity=D(3_000_000)
    )


def test_unpriced_usage_names_the_price_and_the_values() -> None:
    with pytest.raises(UnpricedUsage) as caught:
        price_usage(LLM, D(10), {"model": "claude", "direction": "input", "region": "eu"})
    error = caught.value
    assert isinstance(error, ValueError) and isinstance(error, RailyardError)
    assert error.price_key == "llm"
    assert error.dimensions == {"model": "claude", "direction": "input"}
    assert "'llm'" in str(error) and "model='claude'" in str(error)
    assert "direction='input'" in str(error) and "region" not in str(error)


def test_unpriced_usage_with_a_missing_value() -> None:
    with pytest.raises(UnpricedUsage, match="direction=None"):
        price_usage(LLM, D(10), {"model": "gpt"})


def test_unpriced_zero_usage_costs_nothing_rather_than_failing() -> None:
    dims = {"model": "claude", "direction": "input"}
    zero = Priced(amount=D(0), unit_amount=None, quantity=D(0))
    assert price_usage(LLM, D(0), dims) == zero
    assert price_usage(LLM, D(500), dims, included=D(500)) == zero


# --- included units and bad input -----------------------------------------------------------


@pytest.mark.parametrize(
    ("price", "quantity", "included", "billable", "amount"),
    [
        (TOKENS, "1500000", "500000", "1000000", "2.000000"),
        (TOKENS, "500", "1000", "0", "0"),
        (TOKENS, "1000", "1000", "0", "0"),
        (GRAD, "7000", "1000", "6000", "51"),
        (GRAD, "1500", "500", "1000", "0"),
        (VOL, "1500", "500", "1000", "0"),
        (VOL, "6500", "500", "6000", "31"),
        (PACK, "1001", "1", "1000", "2.50"),
        (PACK, "999", "1000", "0", "0"),
    ],
)
def test_included_units_come_off_first(
    price: Price, quantity: str, included: str, billable: str, amount: str
) -> None:
    priced = price_usage(price, D(quantity), included=D(included))
    assert priced.quantity == D(billable)
    assert priced.amount == D(amount)


def test_included_units_are_taken_off_exactly_beyond_28_digits() -> None:
    quantity = D("1" + "0" * 39 + "1")
    priced = price_usage(TOKENS, quantity, included=D(1))
    assert priced.quantity == D(10) ** 40
    assert priced.amount == D(2) * D(10) ** 34


@pytest.mark.parametrize("model", list(PriceModel))
@pytest.mark.parametrize(("quantity", "included"), [("-1", "0"), ("1", "-1"), ("NaN", "0")])
def test_negative_or_non_finite_input_is_rejected(
    model: PriceModel, quantity: str, included: str
) -> None:
    with pytest.raises(ValueError, match="must be a finite number"):
        price_usage(SAMPLES[model], D(quantity), included=D(included))


@pytest.mark.parametrize("kind", [GraduatedPrice, VolumePrice])
def test_tiers_that_leave_usage_unpriced_are_rejected(kind: type) -> None:
    bounded = kind("t", "m", (Tier(D(10), D(1)), Tier(D(20), D(2))))
    assert price_usage(bounded, D(20)).amount == (D(30) if kind is GraduatedPrice else D(40))
    with pytest.raises(ValueError, match="beyond its last tier"):
        price_usage(bounded, D("20.000000001"))
    for tiers, problem in [
        ((), "no tiers"),
        ((Tier(D(10)), Tier(D(10)), Tier(None)), "must ascend"),
        ((Tier(None), Tier(D(10))), "only the last tier"),
    ]:
        with pytest.raises(ValueError, match=problem):
            price_usage(kind("t", "m", tiers), D(1))


# --- properties ------------------------------------------------------------------------------

quantities = st.decimals(min_value=0, max_value=10**12, places=9)
amounts = st.decimals(min_value=0, max_value=10, places=6)
flats = st.decimals(min_value=0, max_value=100, places=2)


@st.composite
def tier_sets(draw: st.DrawFn) -> tuple[Tier, ...]:
    bounds = draw(
        st.lists(st.decimals(min_value=1, max_value=10**9, places=3), max_size=4, unique=True)
    )
    ups: list[Decimal | None] = [*sorted(bounds), None]
    return tuple(Tier(up, draw(amounts), draw(flats)) for up in ups)


def increment_oracle(tiers: Sequence[Tier], start: Decimal, end: Decimal) -> Decimal:
    """What units (start, end] cost under graduated tiers, tier by tier, written out anew."""
    total, lower = Decimal(0), Decimal(0)
    with rating_context():
        for tier in tiers:
            upper = end if tier.up_to is None else tier.up_to
            overlap = min(end, upper) - max(start, lower)
            if overlap > 0:
                total += overlap * tier.unit_amount
                if start <= lower:  # the tier is entered within (start, end]
                    total += tier.flat_amount
            lower = upper
    return total


@settings(max_examples=300, deadline=None)
@given(tier_sets(), quantities, quantities)
def test_graduated_is_additive(tiers: tuple[Tier, ...], q1: Decimal, q2: Decimal) -> None:
    price = GraduatedPrice("g", "m", tiers)
    first = price_usage(price, q1).amount
    whole = price_usage(price, q1 + q2).amount
    assert first == increment_oracle(tiers, D(0), q1)
    assert first + increment_oracle(tiers, q1, q1 + q2) == whole
    assert first + (whole - first) == whole


@settings(max_examples=300, deadline=None)
@given(tier_sets(), quantities, quantities)
def test_graduated_is_monotone(tiers: tuple[Tier, ...], q1: Decimal, q2: Decimal) -> None:
    price = GraduatedPrice("g", "m", tiers)
    assert price_usage(price, q1).amount <= price_usage(price, q1 + q2).amount


@settings(max_examples=300, deadline=None)
@given(tier_sets(), quantities)
def test_volume_is_never_negative_and_prices_every_unit_at_one_tier(
    tiers: tuple[Tier, ...], quantity: Decimal
) -> None:
    priced = price_usage(VolumePrice("v", "m", tiers), quantity)
    assert priced.amount >= 0
    if quantity:
        (tier,) = priced.tiers
        assert priced.amount == quantity * tier.unit_amount + tier.flat_amount
        # The lowest tier whose bound the quantity does not exceed.
        bounds = [t.up_to for t in tiers if t.up_to is not None and quantity <= t.up_to]
        assert tier.up_to == (min(bounds) if bounds else None)


@settings(max_examples=200, deadline=None)
@given(tier_sets(), quantities)
def test_one_tier_graduated_and_volume_agree(tiers: tuple[Tier, ...], quantity: Decimal) -> None:
    (tier,) = tiers[-1:]
    single = (Tier(None, tier.unit_amount, tier.flat_amount),)
    grad = price_usage(GraduatedPrice("g", "m", single), quantity).amount
    assert grad == price_usage(VolumePrice("v", "m", single), quantity).amount


@settings(max_examples=300, deadline=None)
@given(quantities, st.decimals(min_value="0.001", max_value=10**6, places=3))
def test_packages_is_the_least_number_of_blocks_that_hold_the_quantity(
    quantity: Decimal, size: Decimal
) -> None:
    blocks = packages(quantity, size)
    assert blocks == blocks.to_integral_value()
    assert (blocks - 1) * size < quantity <= blocks * size or blocks == quantity == 0


def window_by_window(price: Price, windows: Sequence[Decimal], included: Decimal) -> Decimal:
    """Rate each window as it closes: what the running total now costs less what it did."""
    charged, running = Decimal(0), Decimal(0)
    with rating_context():
        for value in windows:
            before = price_usage(price, running, included=included).amount
            running += value
            charged += price_usage(price, running, included=included).amount - before
    return charged


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.builds(UnitPrice, st.just("u"), st.just("m"), amounts),
        st.builds(GraduatedPrice, st.just("g"), st.just("m"), tier_sets()),
        st.builds(
            PackagePrice,
            st.just("p"),
            st.just("m"),
            st.decimals(min_value="0.5", max_value=10**6, places=1),
            flats,
        ),
    ),
    st.lists(quantities, max_size=24),
    st.decimals(min_value=0, max_value=10**6, places=0),
)
def test_rating_window_by_window_equals_rating_the_period_total(
    price: Price, windows: list[Decimal], included: Decimal
) -> None:
    total = _sum(windows)
    expected = price_usage(price, total, included=included).amount
    assert window_by_window(price, windows, included) == expected


def _sum(windows: Sequence[Decimal]) -> Decimal:
    with rating_context():
        return sum(windows, D(0))


def test_window_by_window_holds_for_huge_quantities() -> None:
    windows = [D("123456789012345678901234567890.123456789")] * 3 + [D("0.000000001")]
    total = _sum(windows)
    for price in (TOKENS, GRAD, PACK):
        assert window_by_window(price, windows, D(0)) == price_usage(price, total).amount


# --- purity ----------------------------------------------------------------------------------

# What rating may import (no Faust, Kafka, ClickHouse, I/O or clock: nothing outside the
# pure domain) is held for all of streams/domain by tests/unit/test_layers.py.

RATING = Path(__file__).parents[2] / "streams" / "domain" / "rating"


def test_rating_uses_no_float() -> None:
    for module in RATING.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            assert not (isinstance(node, ast.Name) and node.id == "float"), module
            assert not (isinstance(node, ast.Constant) and isinstance(node.value, float)), module
