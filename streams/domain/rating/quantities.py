"""How a meter's window totals combine into the quantity billed for a period.

The stream keeps one total per (meter, subject, group, window) and never the raw
events of a whole period, so a period's quantity has to be built from windows.
For SUM and COUNT that is exact. For MIN and MAX the extreme of the windows is
the extreme of the period. LATEST is the value of the latest window. AVG and
UNIQUE_COUNT cannot be recovered from window totals, so they are *defined* on
windows: AVG is the mean of the window values, and UNIQUE_COUNT bills
"unit-windows" (distinct users per hour summed: user-hours). The batch oracle
calls this same function, so stream and batch agree by construction.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from streams.domain.meters import Aggregation

from .money import rating_context


def period_quantity(
    aggregation: Aggregation, windows: Iterable[tuple[datetime, Decimal]]
) -> Decimal:
    """The period quantity from ``(window_start, value)`` pairs; 0 when there are none.

    The result does not depend on the pairs' order. LATEST takes the window with
    the latest start; should several share it, the largest of their values.
    """
    pairs = list(windows)
    if not pairs:
        return Decimal(0)
    values = [v for _, v in pairs]
    with rating_context():
        match Aggregation(aggregation):
            case Aggregation.SUM | Aggregation.COUNT | Aggregation.UNIQUE_COUNT:
                return sum(values, Decimal(0))
            case Aggregation.MIN:
                return min(values)
            case Aggregation.MAX:
                return max(values)
            case Aggregation.LATEST:
                return max(pairs)[1]
            case Aggregation.AVG:
                return sum(values, Decimal(0)) / len(values)
    raise ValueError(f"no period quantity for aggregation {aggregation!r}")
