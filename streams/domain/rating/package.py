"""Package: ``amount`` per started block of ``package_size`` units.

A started block is charged in full: 1 unit of a 1000-unit package costs the
package, 1001 units cost two. No units cost nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from streams.domain.catalog.prices import PackagePrice

from .money import rating_context
from .pricer import Priced


def packages(quantity: Decimal, package_size: Decimal) -> Decimal:
    """``ceil(quantity / package_size)``, exactly.

    Integer division and remainder are exact in Decimal, unlike ``q / size``
    followed by a ceiling, which could round 4.000...01 down to 4 first.
    """
    if package_size <= 0:
        raise ValueError(f"package size must be positive, not {package_size}")
    with rating_context():
        whole, rest = divmod(quantity, package_size)
        return whole + (1 if rest else 0)


class PackagePricer:
    def price(
        self, price: PackagePrice, quantity: Decimal, dimensions: Mapping[str, str]
    ) -> Priced:
        """``unit_amount`` is None: the package amount is not a per-unit price."""
        with rating_context():
            amount = packages(quantity, price.package_size) * price.amount
        return Priced(amount=amount, unit_amount=None, quantity=quantity)
