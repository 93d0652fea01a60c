"""What a price charges for a billable quantity, exactly (a Fraction, unrounded).

The rules (docs/rating.md, and the module docstrings of each production price
model where the doc is silent):

* **per_unit**: ``quantity x unit_amount``.
* **graduated**: tier ``up_to`` bounds are inclusive and cumulative; each tier
  prices the units above the previous bound up to its own. A tier's
  ``flat_amount`` is charged once when any quantity lies inside the tier (above
  the previous bound), never otherwise: zero usage costs nothing.
* **volume**: the first tier whose ``up_to`` is at or above the quantity (a
  quantity exactly on a bound belongs to that tier) prices every unit, plus its
  ``flat_amount`` once; a quantity of 0 costs nothing (not even the flat amount).
* **package**: ``amount`` per started block of ``package_size``: ``ceil(q / size)``.
* **dimension**: the unit amount for the combination of the price's dimensions,
  else ``default_unit_amount``; no rate and no default is an error unless the
  billable quantity is 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction

from streams.domain.catalog import (
    DimensionPrice,
    GraduatedPrice,
    PackagePrice,
    UnitPrice,
    UsagePrice,
    VolumePrice,
)

from .money import exact


class Unpriced(ValueError):
    """Billable usage that a dimension price has no rate for."""


def charge(price: UsagePrice, quantity: Fraction, values: Mapping[str, str]) -> Fraction:
    if isinstance(price, UnitPrice):
        return quantity * exact(price.unit_amount)
    if isinstance(price, GraduatedPrice):
        return _graduated(price, quantity)
    if isinstance(price, VolumePrice):
        return _volume(price, quantity)
    if isinstance(price, PackagePrice):
        size = exact(price.package_size)
        blocks = -(-quantity // size)  # ceiling division, exact on Fractions
        return blocks * exact(price.amount)
    if isinstance(price, DimensionPrice):
        return _dimension(price, quantity, values)
    raise TypeError(f"no usage charge for {type(price).__name__}")


def _graduated(price: GraduatedPrice, quantity: Fraction) -> Fraction:
    total = Fraction(0)
    below = Fraction(0)
    for tier in price.tiers:
        if quantity <= below:
            break
        top = quantity if tier.up_to is None else min(quantity, exact(tier.up_to))
        total += (top - below) * exact(tier.unit_amount) + exact(tier.flat_amount)
        if tier.up_to is not None:
            below = exact(tier.up_to)
    return total


def _volume(price: VolumePrice, quantity: Fraction) -> Fraction:
    if quantity == 0:
        return Fraction(0)
    for tier in price.tiers:
        if tier.up_to is None or quantity <= exact(tier.up_to):
            return quantity * exact(tier.unit_amount) + exact(tier.flat_amount)
    raise ValueError(f"{price.key}: {quantity} is beyond the last tier")


def _dimension(price: DimensionPrice, quantity: Fraction, values: Mapping[str, str]) -> Fraction:
    wanted = tuple(values.get(d, "") for d in price.dimensions)
    unit = next((r.unit_amount for r in price.rates if r.values == wanted), None)
    if unit is None:
        unit = price.default_unit_amount
    if unit is None:
        if quantity == 0:
            return Fraction(0)
        raise Unpriced(f"{price.key} has no rate for {dict(values)!r:.200}")
    return quantity * exact(unit)
