"""Graduated tiers: each tier prices the units that fall inside it.

Convention for ``flat_amount``: a tier's flat amount is charged once, in full,
when at least some usage falls inside the tier (any quantity above the previous
tier's bound, fractions included), and not at all otherwise. So zero usage
costs nothing, and crossing into a tier adds its flat amount exactly once. This
keeps the price additive: ``graduated(a + b) - graduated(a)`` is what the
increment of ``b`` units costs, which lets windows be rated one at a time.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from streams.domain.catalog.prices import GraduatedPrice
from streams.domain.invoice import TierSlice

from .money import rating_context
from .pricer import Priced
from .tiers import beyond_last_tier, with_lower_bounds


def graduated_slices(price: GraduatedPrice, quantity: Decimal) -> tuple[TierSlice, ...]:
    """One slice per tier that ``quantity`` reaches into, in tier order."""
    bounded = with_lower_bounds(price.key, price.tiers)
    last = price.tiers[-1].up_to
    if last is not None and quantity > last:
        raise beyond_last_tier(price.key, quantity)
    slices: list[TierSlice] = []
    with rating_context():
        for lower, tier in bounded:
            if quantity <= lower:
                break
            top = quantity if tier.up_to is None else min(quantity, tier.up_to)
            inside = top - lower
            amount = inside * tier.unit_amount + tier.flat_amount
            slices.append(TierSlice(tier.up_to, inside, tier.unit_amount, tier.flat_amount, amount))
    return tuple(slices)


class GraduatedPricer:
    def price(
        self, price: GraduatedPrice, quantity: Decimal, dimensions: Mapping[str, str]
    ) -> Priced:
        slices = graduated_slices(price, quantity)
        with rating_context():
            amount = sum((s.amount for s in slices), Decimal(0))
        return Priced(amount=amount, unit_amount=None, quantity=quantity, tiers=slices)
