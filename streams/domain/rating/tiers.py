"""Walking a price's tiers: each covers the units above the previous tier's bound.

Tier ``up_to`` is an inclusive cumulative bound: with tiers up to 1000 and up to
5000, unit 1000 is in the first tier and units (1000, 5000] in the second. The
catalog guarantees ascending bounds and an open-ended last tier; prices built by
hand are checked here too, so a gap can never price usage at zero.
"""

from __future__ import annotations

from decimal import Decimal

from streams.domain.catalog.prices import Tier


def with_lower_bounds(key: str, tiers: tuple[Tier, ...]) -> tuple[tuple[Decimal, Tier], ...]:
    """Each tier with the bound it starts above (0 for the first), all checked first."""
    if not tiers:
        raise ValueError(f"price {key!r} has no tiers")
    bounded: list[tuple[Decimal, Tier]] = []
    lower = Decimal(0)
    for i, tier in enumerate(tiers):
        if tier.up_to is not None and tier.up_to <= lower:
            raise ValueError(f"price {key!r}: tier bounds must ascend, {tier.up_to} does not")
        if tier.up_to is None and i != len(tiers) - 1:
            raise ValueError(f"price {key!r}: only the last tier may be open-ended")
        bounded.append((lower, tier))
        if tier.up_to is not None:
            lower = tier.up_to
    return tuple(bounded)


def beyond_last_tier(key: str, quantity: Decimal) -> ValueError:
    return ValueError(f"price {key!r}: quantity {quantity} is beyond its last tier")
