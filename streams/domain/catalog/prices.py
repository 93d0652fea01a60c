"""Prices on a rate card: what each model charges for, not yet how much is owed.

A rate card lists prices, each keyed (by default by its meter) so a contract can
replace one plan price without restating the rest. Amounts are Decimals in the
plan's currency; rating a billing period against them happens elsewhere.

Every usage price (all models but flat) may include ``included`` free units per
billing period: they are taken off the period's quantity before it is priced.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import ClassVar


class PriceModel(StrEnum):
    FLAT = "flat"
    """A fixed fee per billing period; a meter, if named, only ties it to that product."""
    PER_UNIT = "per_unit"
    """``unit_amount`` for each unit metered."""
    GRADUATED = "graduated"
    """Each tier prices the units that fall inside it (the first tier often free)."""
    VOLUME = "volume"
    """The tier the period's total falls in prices every unit."""
    PACKAGE = "package"
    """``amount`` per started block of ``package_size`` units."""
    DIMENSION = "dimension"
    """A unit amount per combination of group-by values, such as model and direction."""


@dataclass(frozen=True)
class Tier:
    """Units up to ``up_to`` (None: no upper bound), after the previous tier's bound."""

    up_to: Decimal | None
    unit_amount: Decimal = Decimal(0)
    flat_amount: Decimal = Decimal(0)


@dataclass(frozen=True)
class FlatPrice:
    key: str
    amount: Decimal
    meter: str | None = None
    model: ClassVar[PriceModel] = PriceModel.FLAT


@dataclass(frozen=True)
class UnitPrice:
    key: str
    meter: str
    unit_amount: Decimal
    included: Decimal = Decimal(0)
    model: ClassVar[PriceModel] = PriceModel.PER_UNIT


@dataclass(frozen=True)
class GraduatedPrice:
    key: str
    meter: str
    tiers: tuple[Tier, ...]
    included: Decimal = Decimal(0)
    model: ClassVar[PriceModel] = PriceModel.GRADUATED


@dataclass(frozen=True)
class VolumePrice:
    key: str
    meter: str
    tiers: tuple[Tier, ...]
    included: Decimal = Decimal(0)
    model: ClassVar[PriceModel] = PriceModel.VOLUME


@dataclass(frozen=True)
class PackagePrice:
    key: str
    meter: str
    package_size: Decimal
    amount: Decimal
    included: Decimal = Decimal(0)
    model: ClassVar[PriceModel] = PriceModel.PACKAGE


@dataclass(frozen=True)
class DimensionRate:
    """The unit amount for one combination of values, aligned with ``dimensions``."""

    values: tuple[str, ...]
    unit_amount: Decimal


@dataclass(frozen=True)
class DimensionPrice:
    key: str
    meter: str
    dimensions: tuple[str, ...]
    rates: tuple[DimensionRate, ...]
    default_unit_amount: Decimal | None = None
    included: Decimal = Decimal(0)
    model: ClassVar[PriceModel] = PriceModel.DIMENSION

    def __post_init__(self) -> None:
        # One order for equal content, so the catalog's version does not depend on it.
        object.__setattr__(self, "rates", tuple(sorted(self.rates, key=lambda r: r.values)))

    def unit_amount_for(self, dimensions: Mapping[str, str]) -> Decimal | None:
        """The unit amount for usage grouped by ``dimensions``; None when unpriced."""
        wanted = tuple(dimensions.get(d) for d in self.dimensions)
        for rate in self.rates:
            if rate.values == wanted:
                return rate.unit_amount
        return self.default_unit_amount


Price = FlatPrice | UnitPrice | GraduatedPrice | VolumePrice | PackagePrice | DimensionPrice
UsagePrice = UnitPrice | GraduatedPrice | VolumePrice | PackagePrice | DimensionPrice
"""Every price that charges for a meter's quantity: all models but flat."""
RateCard = tuple[Price, ...]


def by_key(prices: RateCard) -> RateCard:
    """A rate card in key order: the order prices are written in means nothing."""
    return tuple(sorted(prices, key=lambda p: p.key))


def merge_rate_cards(plan: RateCard, contract: RateCard) -> RateCard:
    """The plan's prices with the contract's replacing those of the same key."""
    return by_key(tuple(({p.key: p for p in plan} | {p.key: p for p in contract}).values()))
