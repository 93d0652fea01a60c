"""Volume tiers: the tier the period's total falls in prices every unit.

A total exactly at a tier's ``up_to`` belongs to that tier (the bound is
inclusive). The tier's ``flat_amount`` is added once. Zero usage costs nothing,
as with graduated tiers: a flat amount is the price of usage in the tier, and a
fee owed regardless of usage is a flat price. Unlike graduated tiers, volume
pricing is not monotone: crossing a bound can lower the total.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from streams.domain.catalog.prices import Tier, VolumePrice
from streams.domain.invoice import TierSlice

from .money import rating_context
from .pricer import Priced
from .tiers import beyond_last_tier, with_lower_bounds


def volume_tier(key: str, tiers: tuple[Tier, ...], quantity: Decimal) -> Tier:
    """The tier a total of ``quantity`` falls in."""
    for _, tier in with_lower_bounds(key, tiers):
        if tier.up_to is None or quantity <= tier.up_to:
            return tier
    raise beyond_last_tier(key, quantity)


class VolumePricer:
    def price(self, price: VolumePrice, quantity: Decimal, dimensions: Mapping[str, str]) -> Priced:
        tier = volume_tier(price.key, price.tiers, quantity)
        if quantity == 0:
            return Priced(amount=Decimal(0), unit_amount=None, quantity=quantity)
        with rating_context():
            amount = quantity * tier.unit_amount + tier.flat_amount
        piece = TierSlice(tier.up_to, quantity, tier.unit_amount, tier.flat_amount, amount)
        return Priced(
            amount=amount, unit_amount=tier.unit_amount, quantity=quantity, tiers=(piece,)
        )
