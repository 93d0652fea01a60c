"""What every price model answers, and the contract each one implements.

A pricer is a pure function of (price, billable quantity, group-by values): no
clock, no I/O, no rounding. Its amount stays unrounded so that invoice assembly
rounds each line exactly once, after discounts and caps have been applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol, TypeVar

from streams.domain.invoice import TierSlice

P = TypeVar("P", contravariant=True)


@dataclass(frozen=True, kw_only=True)
class Priced:
    """The charge for one price over one quantity (keyword-only, to keep fields apart)."""

    amount: Decimal
    """Unrounded, in the price's currency."""
    unit_amount: Decimal | None
    """The single unit amount that applied (per unit, volume, dimension); None otherwise."""
    quantity: Decimal
    """The billable quantity: what was metered less the included (free) units."""
    tiers: tuple[TierSlice, ...] = ()
    """Graduated: one slice per tier with units in it. Volume: the one tier that applied."""


class Pricer(Protocol[P]):
    """One price model: the charge for ``quantity`` billable units under ``price``."""

    def price(self, price: P, quantity: Decimal, dimensions: Mapping[str, str]) -> Priced:
        """``quantity`` is already net of included units and never negative."""
        ...
