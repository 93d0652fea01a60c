"""Flat fee: the price's amount for the billing period, whatever was metered.

Proration (a fee for part of a period, after a plan change) is not done here:
invoice assembly multiplies by :func:`streams.domain.rating.periods.proration`.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from streams.domain.catalog.prices import FlatPrice

from .pricer import Priced


class FlatPricer:
    def price(self, price: FlatPrice, quantity: Decimal, dimensions: Mapping[str, str]) -> Priced:
        """The fee; ``quantity`` (usage of the meter the fee is tied to) is reported as is."""
        return Priced(amount=price.amount, unit_amount=None, quantity=quantity)
