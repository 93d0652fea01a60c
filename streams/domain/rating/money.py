"""Rounding money to a currency's minor unit, and the precision all rating runs at.

Rating multiplies quantities that can be huge (tokens by the trillion) by unit
prices that can be tiny (USD 0.000002). Python's default decimal context keeps
28 significant digits and *silently* rounds beyond that, so every rating
computation runs inside :func:`rating_context` (60 digits, errors trapped).
Only the final amount of a line is rounded, once, by :func:`round_money`.
"""

from __future__ import annotations

import decimal
from contextlib import AbstractContextManager
from decimal import ROUND_HALF_EVEN, Decimal

from streams.domain.catalog.currency import minor_units
from streams.domain.catalog.model import Rounding

__all__ = ["RATING_PRECISION", "Rounding", "currency_places", "rating_context", "round_money"]

RATING_PRECISION = 60
"""Significant digits for rating arithmetic: exact for any realistic quantity x price."""


def rating_context(precision: int = RATING_PRECISION) -> AbstractContextManager[decimal.Context]:
    """A local decimal context for rating: ``with rating_context(): ...``.

    Inexact results still round (1/3 has no end) but at 60 digits, far below any
    minor unit; overflow and invalid operations raise instead of yielding NaN.
    """
    return decimal.localcontext(
        decimal.Context(
            prec=precision,
            rounding=ROUND_HALF_EVEN,
            traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
        )
    )


def currency_places(currency: str) -> int:
    """Decimal places of ``currency``; ValueError for a currency we do not know."""
    places = minor_units(currency)
    if places is None:
        raise ValueError(f"unknown currency {currency!r}: no minor unit to round to")
    return places


def round_money(amount: Decimal, currency: str, rounding: Rounding = Rounding.HALF_EVEN) -> Decimal:
    """``amount`` quantized to the minor unit of ``currency`` (JPY 0, USD 2, KWD 3 places).

    The result always carries exactly that many places (USD 5 -> 5.00), so equal
    amounts compare and serialize alike. Works for amounts of any size: the
    precision grows with the amount rather than rounding its integer digits away.
    """
    places = currency_places(currency)
    if not amount.is_finite():
        raise ValueError(f"cannot round {amount} {currency}: not a finite amount")
    precision = max(RATING_PRECISION, amount.adjusted() + places + 2)
    with rating_context(precision):
        return amount.quantize(Decimal(1).scaleb(-places), rounding=Rounding(rounding).decimal_mode)
