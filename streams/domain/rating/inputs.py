"""What invoice assembly rates: window totals and late usage, one customer at a time."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import NamedTuple


class WindowTotal(NamedTuple):
    """A meter's absolute total in one window for one group of a customer.

    ``group`` holds the values of the meter's ``group_by``, in that order; a
    window is identified by (meter, group, window_start) and given once.
    """

    meter: str
    group: tuple[str, ...]
    window_start: datetime
    value: Decimal


class LateQuantity(NamedTuple):
    """Usage that missed its window: billed in the period its ``time`` falls in."""

    meter: str
    group: tuple[str, ...]
    time: datetime
    quantity: Decimal
