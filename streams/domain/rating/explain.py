"""How a line's amount follows from its quantity: the arithmetic, written out and checked.

``railyard explain`` prints this beside the usage evidence it reads back from the store.
Pure: the line's own tier slices in, text and a verdict out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from streams.domain.invoice import TierSlice
from streams.domain.rating.money import currency_places, rating_context


@dataclass(frozen=True)
class Arithmetic:
    steps: tuple[str, ...]
    """One line per tier slice: ``quantity x unit (+ flat) = amount``."""
    unrounded: Decimal
    """The slices' sum before the line's one rounding."""
    holds: bool
    """The line's amount is the sum rounded to the currency's minor unit."""


def tier_arithmetic(tiers: Sequence[TierSlice], amount: Decimal, currency: str) -> Arithmetic:
    """Each slice's product and the total: the amount must be their sum, rounded once
    to the minor unit (any rounding mode lands within half a minor unit of it)."""
    steps: list[str] = []
    total = Decimal(0)
    consistent = True
    with rating_context():
        for t in tiers:
            computed = t.quantity * t.unit_amount + t.flat_amount
            bound = "and above" if t.up_to is None else f"up to {t.up_to:,}"
            flat = f" + {t.flat_amount:f} flat" if t.flat_amount else ""
            mark = "" if computed == t.amount else f"  (the slice says {t.amount:f})"
            steps.append(f"{t.quantity:,} {bound} x {t.unit_amount:f}{flat} = {computed:f}{mark}")
            consistent = consistent and computed == t.amount
            total += t.amount
        half_unit = Decimal(1).scaleb(-currency_places(currency)) / 2
        holds = consistent and abs(amount - total) <= half_unit
    return Arithmetic(tuple(steps), total, holds)


def unit_arithmetic(
    quantity: Decimal, unit_amount: Decimal, amount: Decimal, currency: str
) -> Arithmetic:
    """A per-unit line: ``quantity x unit = amount``, rounded once to the minor unit."""
    with rating_context():
        product = quantity * unit_amount
        holds = abs(amount - product) <= Decimal(1).scaleb(-currency_places(currency)) / 2
    step = f"{quantity:,} x {unit_amount:f} = {product:f}, rounded to {amount:f}"
    return Arithmetic((step,), product, holds)
