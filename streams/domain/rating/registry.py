"""One pricer per price model, and the single entry point rating goes through.

Adding a price model means adding a module and a line here; a unit test fails
until every :class:`PriceModel` member has a pricer.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from streams.domain.catalog.prices import Price, PriceModel

from .dimension import DimensionPricer
from .flat import FlatPricer
from .graduated import GraduatedPricer
from .money import rating_context
from .package import PackagePricer
from .per_unit import UnitPricer
from .pricer import Priced, Pricer
from .volume import VolumePricer

PRICERS: Mapping[PriceModel, Pricer[Any]] = MappingProxyType(
    {
        PriceModel.FLAT: FlatPricer(),
        PriceModel.PER_UNIT: UnitPricer(),
        PriceModel.GRADUATED: GraduatedPricer(),
        PriceModel.VOLUME: VolumePricer(),
        PriceModel.PACKAGE: PackagePricer(),
        PriceModel.DIMENSION: DimensionPricer(),
    }
)

_NO_DIMENSIONS: Mapping[str, str] = MappingProxyType({})


def price_usage(
    price: Price,
    quantity: Decimal,
    dimensions: Mapping[str, str] = _NO_DIMENSIONS,
    included: Decimal = Decimal(0),
) -> Priced:
    """The unrounded charge for ``quantity`` metered units under ``price``.

    ``included`` units are free and come off first; the billable quantity never
    drops below zero (included units beyond usage are simply unused, not a credit).
    A negative or non-finite quantity is a bug upstream, so it raises ValueError.
    """
    for name, value in (("quantity", quantity), ("included", included)):
        if not value.is_finite() or value < 0:
            raise ValueError(
                f"price {price.key!r}: {name} must be a finite number >= 0, not {value}"
            )
    with rating_context():
        billable = max(quantity - included, Decimal(0))
    return PRICERS[price.model].price(price, billable, dimensions)
