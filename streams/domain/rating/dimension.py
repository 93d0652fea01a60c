"""Dimension prices: a unit amount per combination of group-by values.

Usage whose values match no rate and that has no default is *unpriced*: a gap in
the catalog, never a silent zero. Rating stops with :class:`UnpricedUsage` so the
catalog is fixed and the period re-rated, rather than an invoice under-charging.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from streams.domain.catalog.prices import DimensionPrice
from streams.domain.errors import RailyardError

from .money import rating_context
from .pricer import Priced


class UnpricedUsage(RailyardError, ValueError):
    """Billable usage whose group-by values no rate of the price covers."""

    def __init__(self, price_key: str, dimensions: Mapping[str, str | None]) -> None:
        self.price_key = price_key
        self.dimensions = dict(dimensions)
        values = ", ".join(f"{k}={v!r}" for k, v in self.dimensions.items())
        super().__init__(f"price {price_key!r} has no rate and no default for {values}")


class DimensionPricer:
    def price(
        self, price: DimensionPrice, quantity: Decimal, dimensions: Mapping[str, str]
    ) -> Priced:
        """Raises :class:`UnpricedUsage` for unpriced values, unless nothing is billable.

        Zero billable units cost nothing whatever the rate, so they are not an error:
        usage entirely covered by included units must not block an invoice.
        """
        unit = price.unit_amount_for(dimensions)
        if unit is None:
            if quantity == 0:
                return Priced(amount=Decimal(0), unit_amount=None, quantity=quantity)
            raise UnpricedUsage(price.key, {d: dimensions.get(d) for d in price.dimensions})
        with rating_context():
            amount = quantity * unit
        return Priced(amount=amount, unit_amount=unit, quantity=quantity)
