"""Rounding money to a currency's minor unit (streams/domain/rating/money.py)."""

from __future__ import annotations

import decimal
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.domain.rating import (
    RATING_PRECISION,
    Rounding,
    currency_places,
    rating_context,
    round_money,
)

D = Decimal
EVEN, HALF_UP, DOWN, UP = Rounding.HALF_EVEN, Rounding.HALF_UP, Rounding.DOWN, Rounding.UP


@pytest.mark.parametrize(
    ("amount", "currency", "rounding", "expected"),
    [
        # USD, two places: ties to even vs away from zero.
        ("2.345", "USD", EVEN, "2.34"),
        ("2.355", "USD", EVEN, "2.36"),
        ("2.345", "USD", HALF_UP, "2.35"),
        ("2.355", "USD", HALF_UP, "2.36"),
        ("2.3450000001", "USD", EVEN, "2.35"),
        ("2.3449999999", "USD", HALF_UP, "2.34"),
        ("-2.345", "USD", EVEN, "-2.34"),
        ("-2.345", "USD", HALF_UP, "-2.35"),
        ("0.005", "USD", EVEN, "0.00"),
        ("0.005", "USD", HALF_UP, "0.01"),
        ("2.469134", "USD", EVEN, "2.47"),
        ("1.999", "USD", DOWN, "1.99"),
        ("-1.999", "USD", DOWN, "-1.99"),
        ("1.001", "USD", UP, "1.01"),
        ("-1.001", "USD", UP, "-1.01"),
        ("1.00", "USD", UP, "1.00"),
        # EUR, two places.
        ("0.125", "EUR", EVEN, "0.12"),
        ("0.135", "EUR", EVEN, "0.14"),
        ("0.125", "EUR", HALF_UP, "0.13"),
        ("10.994999", "EUR", HALF_UP, "10.99"),
        # JPY, no minor unit.
        ("2.5", "JPY", EVEN, "2"),
        ("3.5", "JPY", EVEN, "4"),
        ("2.5", "JPY", HALF_UP, "3"),
        ("-2.5", "JPY", HALF_UP, "-3"),
        ("2.4999", "JPY", HALF_UP, "2"),
        ("2.0001", "JPY", UP, "3"),
        ("2.9999", "JPY", DOWN, "2"),
        ("1234.5", "JPY", EVEN, "1234"),
        # KWD, three places.
        ("1.2345", "KWD", EVEN, "1.234"),
        ("1.2355", "KWD", EVEN, "1.236"),
        ("1.2345", "KWD", HALF_UP, "1.235"),
        ("1.2344", "KWD", UP, "1.235"),
        ("1.2349", "KWD", DOWN, "1.234"),
        ("0.0005", "KWD", EVEN, "0.000"),
        ("0.0005", "KWD", HALF_UP, "0.001"),
    ],
)
def test_round_money(amount: str, currency: str, rounding: Rounding, expected: str) -> None:
    # Compared as strings: the result must also carry exactly the currency's places.
    assert str(round_money(D(amount), currency, rounding)) == expected


def test_half_even_is_the_default() -> None:
    assert round_money(D("2.345"), "USD") == D("2.34")
    assert round_money(D("2.5"), "JPY") == D(2)


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [("5", "USD", "5.00"), ("100.00", "JPY", "100"), ("7.1", "KWD", "7.100"), ("0", "EUR", "0.00")],
)
def test_result_has_exactly_the_currency_places(amount: str, currency: str, expected: str) -> None:
    assert str(round_money(D(amount), currency)) == expected


def test_rounding_accepts_its_string_value() -> None:
    assert round_money(D("2.345"), "USD", Rounding("half_up")) == D("2.35")
    assert round_money(D("2.345"), "USD", "half_up") == D("2.35")  # type: ignore[arg-type]


def test_rounding_maps_onto_decimal_modes() -> None:
    assert {r.value: r.decimal_mode for r in Rounding} == {
        "half_even": decimal.ROUND_HALF_EVEN,
        "half_up": decimal.ROUND_HALF_UP,
        "down": decimal.ROUND_DOWN,
        "up": decimal.ROUND_UP,
    }


@pytest.mark.parametrize(
    ("amount", "currency", "rounding", "expected"),
    [
        ("1" + "0" * 39 + ".005", "USD", EVEN, "1" + "0" * 39 + ".00"),
        ("1" + "0" * 39 + ".005", "USD", HALF_UP, "1" + "0" * 39 + ".01"),
        ("1" + "0" * 39 + ".015", "USD", EVEN, "1" + "0" * 39 + ".02"),
        ("9" * 35 + ".5", "JPY", EVEN, "1" + "0" * 35),
        ("9" * 35 + ".4999", "JPY", HALF_UP, "9" * 35),
        ("1" + "0" * 30 + ".0005", "KWD", HALF_UP, "1" + "0" * 30 + ".001"),
        # Past even the 60 digits of the rating context: precision grows with the amount.
        ("7" * 80 + ".125", "EUR", EVEN, "7" * 80 + ".12"),
        ("-" + "7" * 80 + ".125", "EUR", HALF_UP, "-" + "7" * 80 + ".13"),
    ],
)
def test_amounts_beyond_28_digits(
    amount: str, currency: str, rounding: Rounding, expected: str
) -> None:
    assert str(round_money(D(amount), currency, rounding)) == expected


def test_the_default_context_could_not_have_done_it() -> None:
    with pytest.raises(decimal.InvalidOperation):
        D("1" + "0" * 39 + ".005").quantize(D("0.01"))


def test_round_money_leaves_the_callers_context_alone() -> None:
    before = decimal.getcontext().copy()
    round_money(D("7" * 80 + ".125"), "EUR")
    after = decimal.getcontext()
    assert (after.prec, after.rounding) == (before.prec, before.rounding)


@pytest.mark.parametrize("currency", ["XXX", "usd", "", "BTC"])
def test_unknown_currency(currency: str) -> None:
    with pytest.raises(ValueError, match="unknown currency"):
        round_money(D(1), currency)
    with pytest.raises(ValueError, match="unknown currency"):
        currency_places(currency)


@pytest.mark.parametrize("amount", ["NaN", "Infinity", "-Infinity", "sNaN"])
def test_non_finite_amounts(amount: str) -> None:
    with pytest.raises(ValueError, match="not a finite amount"):
        round_money(D(amount), "USD")


@pytest.mark.parametrize(("currency", "places"), [("USD", 2), ("EUR", 2), ("JPY", 0), ("KWD", 3)])
def test_currency_places(currency: str, places: int) -> None:
    assert currency_places(currency) == places


def test_rating_context() -> None:
    with rating_context() as ctx:
        assert ctx.prec == RATING_PRECISION == 60
        assert D(1) / D(3) == D("0." + "3" * 60)
        assert D("9" * 40) + 1 == D(10) ** 40
        with pytest.raises(decimal.DivisionByZero):
            D(1) / D(0)
        with pytest.raises(decimal.InvalidOperation):
            D(0) / D(0)
    assert decimal.getcontext().prec == 28


currencies = st.sampled_from(["USD", "EUR", "JPY", "KWD"])
money = st.decimals(min_value=-(10**40), max_value=10**40, places=8)


@settings(max_examples=300, deadline=None)
@given(money, currencies, st.sampled_from(list(Rounding)))
def test_rounding_properties(amount: Decimal, currency: str, rounding: Rounding) -> None:
    rounded = round_money(amount, currency, rounding)
    unit = D(1).scaleb(-currency_places(currency))
    assert rounded.as_tuple().exponent == -currency_places(currency)
    assert round_money(rounded, currency, rounding) == rounded
    with rating_context():
        error = abs(rounded - amount)
        assert error < unit
        if rounding in (EVEN, HALF_UP):
            assert error <= unit / 2
        if rounding is DOWN:
            assert abs(rounded) <= abs(amount)
        if rounding is UP:
            assert abs(rounded) >= abs(amount)
        # Rounding is symmetric about zero in every mode.
        assert round_money(-amount, currency, rounding) == -rounded
