"""Rating: what usage costs under a price, pure and exact.

Every price model is one module behind :class:`Pricer`, found through
:data:`PRICERS`; :func:`price_usage` is the entry point. Amounts come back
unrounded and are rounded once per invoice line with :func:`round_money`. Also
here: billing periods and proration (:mod:`.periods`) and what usage rating reads
(:mod:`.inputs`; quantities merge exactly, see :mod:`streams.domain.partials`). No
Kafka, Faust or ClickHouse.
"""

from .dimension import DimensionPricer, UnpricedUsage
from .flat import FlatPricer
from .graduated import GraduatedPricer, graduated_slices
from .money import RATING_PRECISION, Rounding, currency_places, rating_context, round_money
from .package import PackagePricer, packages
from .per_unit import UnitPricer
from .periods import (
    BillingPeriod,
    billing_period,
    next_period,
    period_of_month,
    periods_between,
    proration,
)
from .pricer import Priced, Pricer
from .registry import PRICERS, price_usage
from .volume import VolumePricer, volume_tier

__all__ = [
    "PRICERS",
    "RATING_PRECISION",
    "BillingPeriod",
    "DimensionPricer",
    "FlatPricer",
    "GraduatedPricer",
    "PackagePricer",
    "Priced",
    "Pricer",
    "Rounding",
    "UnitPricer",
    "UnpricedUsage",
    "VolumePricer",
    "billing_period",
    "currency_places",
    "graduated_slices",
    "next_period",
    "packages",
    "period_of_month",
    "periods_between",
    "price_usage",
    "proration",
    "rating_context",
    "round_money",
    "volume_tier",
]
