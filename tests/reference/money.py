"""Exact money for the reference rater: Fractions, and rounding written out by hand.

Nothing is rounded until an invoice line is: a line's exact amount (a Fraction)
is rounded once to the currency's minor unit with the catalog's rounding mode.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

PLACES = {"JPY": 0, "EUR": 2, "USD": 2, "GBP": 2, "KWD": 3, "BHD": 3}
"""Decimal places of the currencies the random catalogs use (ISO 4217)."""

HALF = Fraction(1, 2)


def exact(value: Decimal | int | str | Fraction) -> Fraction:
    """A number as an exact Fraction (Decimal converts without loss)."""
    return value if isinstance(value, Fraction) else Fraction(value)


def places(currency: str) -> int:
    if currency not in PLACES:
        raise ValueError(f"the reference knows no minor unit for {currency!r}")
    return PLACES[currency]


def round_to(amount: Fraction, digits: int, mode: str) -> Fraction:
    """``amount`` rounded to ``digits`` decimal places.

    ``mode``: ``half_even`` (ties to the even neighbour), ``half_up`` (ties away
    from zero), ``down`` (toward zero), ``up`` (away from zero). Negative amounts
    round symmetrically: the magnitude is rounded, the sign kept.
    """
    scale = 10**digits
    scaled = amount * scale
    negative = scaled < 0
    magnitude = -scaled if negative else scaled
    whole = magnitude.numerator // magnitude.denominator
    rest = magnitude - whole
    if mode == "down":
        bump = False
    elif mode == "up":
        bump = rest > 0
    elif mode == "half_up":
        bump = rest >= HALF
    elif mode == "half_even":
        bump = rest > HALF or (rest == HALF and whole % 2 == 1)
    else:
        raise ValueError(f"unknown rounding mode {mode!r}")
    units = whole + (1 if bump else 0)
    return Fraction(-units if negative else units, scale)


def round_money(amount: Fraction, currency: str, mode: str) -> Fraction:
    return round_to(amount, places(currency), mode)


def floor_to(amount: Fraction, digits: int) -> Fraction:
    """Toward zero at ``digits`` places (amounts here are never negative)."""
    return round_to(amount, digits, "down")


def as_decimal(amount: Fraction, digits: int) -> Decimal:
    """A Fraction that has at most ``digits`` places, as a Decimal with exactly that many."""
    units = amount * 10**digits
    if units.denominator != 1:
        raise ValueError(f"{amount} has more than {digits} decimal places")
    return Decimal(units.numerator).scaleb(-digits)
