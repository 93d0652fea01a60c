"""Monthly billing periods anchored on a day of the month, and proration.

A period is half-open ``[start, end)`` in UTC: an event at exactly ``end`` is in
the next period. Periods start at 00:00 UTC on the anchor day. When a month is
shorter than the anchor day, that month's period starts on its last day instead
(anchor 31: Jan 31, Feb 28 or 29, Mar 31, Apr 30, ...), so no month is skipped
and the anchor is never lost for the months that do have the day.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from .money import RATING_PRECISION, rating_context

_MICROSECOND = timedelta(microseconds=1)
_MONTH = re.compile(r"(\d{4})-(\d{2})")


def _utc(t: datetime, what: str) -> datetime:
    if t.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, not naive: {t.isoformat()}")
    return t.astimezone(UTC)


@dataclass(frozen=True)
class BillingPeriod:
    """``[start, end)``; both are normalized to UTC."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _utc(self.start, "period start"))
        object.__setattr__(self, "end", _utc(self.end, "period end"))
        if self.end <= self.start:
            raise ValueError(f"period ends at {self.end} before it starts at {self.start}")

    def contains(self, t: datetime) -> bool:
        return self.start <= _utc(t, "instant") < self.end

    @property
    def duration(self) -> timedelta:
        return self.end - self.start


def _start_in(anchor_day: int, year: int, month: int) -> datetime:
    day = min(anchor_day, calendar.monthrange(year, month)[1])
    return datetime(year, month, day, tzinfo=UTC)


def _month_after(year: int, month: int, months: int = 1) -> tuple[int, int]:
    index = year * 12 + month - 1 + months
    return index // 12, index % 12 + 1


def _check_anchor(anchor_day: int) -> None:
    if not 1 <= anchor_day <= 31:
        raise ValueError(f"anchor day must be 1..31, not {anchor_day}")


def _period_from(anchor_day: int, start: datetime) -> BillingPeriod:
    return BillingPeriod(start, _start_in(anchor_day, *_month_after(start.year, start.month)))


def billing_period(anchor_day: int, at: datetime) -> BillingPeriod:
    """The period anchored on ``anchor_day`` that contains the instant ``at``."""
    _check_anchor(anchor_day)
    at = _utc(at, "instant")
    start = _start_in(anchor_day, at.year, at.month)
    if at < start:
        start = _start_in(anchor_day, *_month_after(at.year, at.month, -1))
    return _period_from(anchor_day, start)


def anchor_of(period: BillingPeriod) -> int:
    """The anchor day of a period made by :func:`billing_period`.

    One of two consecutive months always has 31 days, so at most one end of a
    period is moved to a month's last day, and the other shows the anchor; the
    moved one is the smaller day.
    """
    return max(period.start.day, period.end.day)


def next_period(period: BillingPeriod) -> BillingPeriod:
    """The period after ``period``; ValueError if it is not an anchored monthly period."""
    anchor = anchor_of(period)
    if billing_period(anchor, period.start) != period:
        raise ValueError(f"{period} is not a monthly billing period")
    return _period_from(anchor, period.end)


def periods_between(anchor_day: int, start: datetime, end: datetime) -> tuple[BillingPeriod, ...]:
    """Every period that overlaps ``[start, end)``, in order; none when it is empty."""
    end = _utc(end, "end")
    if end <= _utc(start, "start"):
        return ()
    found = [billing_period(anchor_day, start)]
    while found[-1].end < end:
        found.append(_period_from(anchor_day, found[-1].end))
    return tuple(found)


def period_of_month(anchor_day: int, month: str) -> BillingPeriod:
    """The period that starts in ``month`` (``"YYYY-MM"``)."""
    _check_anchor(anchor_day)
    match = _MONTH.fullmatch(month)
    if match is None or not 1 <= int(match[2]) <= 12:
        raise ValueError(f"month must be YYYY-MM, not {month!r}")
    return _period_from(anchor_day, _start_in(anchor_day, int(match[1]), int(match[2])))


def share(segment_start: datetime, segment_end: datetime, period: BillingPeriod) -> Fraction:
    """The exact fraction of ``period`` that ``[segment_start, segment_end)`` covers, in [0, 1].

    The segment is clipped to the period; computed from whole microseconds. Prorate
    with :func:`prorate`, never by multiplying with :func:`proration`.
    """
    lo, hi = _utc(segment_start, "segment start"), _utc(segment_end, "segment end")
    if hi < lo:
        raise ValueError(f"segment ends at {hi} before it starts at {lo}")
    lo, hi = max(lo, period.start), min(hi, period.end)
    if hi <= lo:
        return Fraction(0)
    return Fraction((hi - lo) // _MICROSECOND, period.duration // _MICROSECOND)


def proration(segment_start: datetime, segment_end: datetime, period: BillingPeriod) -> Decimal:
    """:func:`share` as a Decimal: a half period is exactly 0.5, a third carries 60 digits.

    For display. Multiplying an amount by it rounds twice: JPY 5139 x 1/6 gives
    856.5000...03, which rounds to 857 where the exact 856.5 rounds half-even to 856.
    """
    exact = share(segment_start, segment_end, period)
    with rating_context():
        return Decimal(exact.numerator) / Decimal(exact.denominator)


def prorate(*terms: tuple[Decimal, Fraction]) -> Decimal:
    """The sum of ``amount x share`` over ``terms``, with a single division at the end.

    Exact whenever the sum has a finite decimal expansion, which is every case that
    sits on a rounding boundary (half a cent, a whole 9th decimal place): so rounding
    the result once gives the exactly rounded amount. A fee over 1/6 of a period is
    ``prorate((fee, share))``; a commitment over several segments sums their terms
    in one call rather than adding prorated parts (three thirds of 100.00 are 100.00,
    not 99.999...).
    """
    total = sum((Fraction(amount) * part for amount, part in terms), Fraction(0))
    digits = len(str(abs(total.numerator))) + len(str(total.denominator))
    with rating_context(max(RATING_PRECISION, 2 * digits)):
        return Decimal(total.numerator) / Decimal(total.denominator)
