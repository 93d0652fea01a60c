"""Per unit: ``unit_amount`` for each billable unit (fractions priced pro rata)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from streams.domain.catalog.prices import UnitPrice

from .money import rating_context
from .pricer import Priced


class UnitPricer:
    def price(self, price: UnitPrice, quantity: Decimal, dimensions: Mapping[str, str]) -> Priced:
        with rating_context():
            amount = quantity * price.unit_amount
        return Priced(amount=amount, unit_amount=price.unit_amount, quantity=quantity)
