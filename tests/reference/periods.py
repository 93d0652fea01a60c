"""Billing periods and shares of a period, recomputed from their definition.

A customer's period starts at 00:00 UTC on its anchor day (the month's last day
when the month is shorter) and ends where the next one starts; half-open. The
share of a period a stretch covers is its length over the period's, exactly.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import NamedTuple


class Period(NamedTuple):
    start: datetime
    end: datetime


def _start(anchor: int, year: int, month: int) -> datetime:
    return datetime(year, month, min(anchor, calendar.monthrange(year, month)[1]), tzinfo=UTC)


def _shift(year: int, month: int, by: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + by
    return index // 12, index % 12 + 1


def starting_in(anchor: int, year: int, month: int) -> Period:
    """The period that starts in ``year``-``month``."""
    return Period(_start(anchor, year, month), _start(anchor, *_shift(year, month, 1)))


def after(anchor: int, year: int, month: int, months: int) -> Period:
    """The period starting ``months`` months after ``year``-``month``."""
    return starting_in(anchor, *_shift(year, month, months))


def containing(anchor: int, at: datetime) -> Period:
    at = at.astimezone(UTC)
    year, month = at.year, at.month
    if at < _start(anchor, year, month):
        year, month = _shift(year, month, -1)
    return starting_in(anchor, year, month)


def following(anchor: int, period: Period) -> Period:
    return containing(anchor, period.end)


def chain(anchor: int, first: datetime, last: datetime) -> list[Period]:
    """Every period from the one holding ``first`` to the one holding ``last``."""
    out = [containing(anchor, first)]
    while out[-1].end <= last:
        out.append(following(anchor, out[-1]))
    return out


def share(start: datetime, end: datetime, period: Period) -> Fraction:
    """The exact fraction of ``period`` that ``[start, end)`` (already inside it) covers."""
    micro = timedelta(microseconds=1)
    return Fraction((end - start) // micro, (period.end - period.start) // micro)
