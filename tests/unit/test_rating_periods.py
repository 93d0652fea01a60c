"""Billing periods and proration (streams/domain/rating/periods.py)."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.domain.rating import (
    BillingPeriod,
    billing_period,
    next_period,
    period_of_month,
    periods_between,
    proration,
    rating_context,
)
from streams.domain.rating.periods import anchor_of

MICRO = timedelta(microseconds=1)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


def period(start: tuple[int, int, int], end: tuple[int, int, int]) -> BillingPeriod:
    return BillingPeriod(utc(*start), utc(*end))


@pytest.mark.parametrize(
    ("anchor", "at", "start", "end"),
    [
        # Anchor 1: calendar months.
        (1, utc(2024, 3, 15, 12), (2024, 3, 1), (2024, 4, 1)),
        (1, utc(2024, 3, 1), (2024, 3, 1), (2024, 4, 1)),
        (1, utc(2024, 3, 1) - MICRO, (2024, 2, 1), (2024, 3, 1)),
        (1, utc(2023, 2, 28, 23, 59), (2023, 2, 1), (2023, 3, 1)),
        (1, utc(2024, 12, 31, 23, 59, 59, 999999), (2024, 12, 1), (2025, 1, 1)),
        (1, utc(2025, 1, 1), (2025, 1, 1), (2025, 2, 1)),
        # Anchor 15.
        (15, utc(2024, 3, 15) - MICRO, (2024, 2, 15), (2024, 3, 15)),
        (15, utc(2024, 3, 15), (2024, 3, 15), (2024, 4, 15)),
        (15, utc(2024, 2, 29), (2024, 2, 15), (2024, 3, 15)),
        (15, utc(2024, 12, 31), (2024, 12, 15), (2025, 1, 15)),
        (15, utc(2025, 1, 10), (2024, 12, 15), (2025, 1, 15)),
        (15, utc(2025, 1, 15), (2025, 1, 15), (2025, 2, 15)),
        # Anchor 28: every month has the day.
        (28, utc(2023, 2, 28), (2023, 2, 28), (2023, 3, 28)),
        (28, utc(2023, 2, 28) - MICRO, (2023, 1, 28), (2023, 2, 28)),
        (28, utc(2024, 2, 29), (2024, 2, 28), (2024, 3, 28)),
        (28, utc(2024, 12, 28), (2024, 12, 28), (2025, 1, 28)),
        (28, utc(2025, 1, 27), (2024, 12, 28), (2025, 1, 28)),
        # Anchor 29 and 30: Feb moves to its last day.
        (29, utc(2023, 2, 28), (2023, 2, 28), (2023, 3, 29)),
        (29, utc(2023, 2, 27), (2023, 1, 29), (2023, 2, 28)),
        (29, utc(2024, 2, 29), (2024, 2, 29), (2024, 3, 29)),
        (30, utc(2024, 2, 29, 6), (2024, 2, 29), (2024, 3, 30)),
        (30, utc(2024, 2, 28), (2024, 1, 30), (2024, 2, 29)),
        # Anchor 31: Feb 28/29 and the 30-day months start on their last day.
        (31, utc(2023, 2, 1), (2023, 1, 31), (2023, 2, 28)),
        (31, utc(2023, 2, 28), (2023, 2, 28), (2023, 3, 31)),
        (31, utc(2023, 2, 28) - MICRO, (2023, 1, 31), (2023, 2, 28)),
        (31, utc(2024, 2, 28, 23), (2024, 1, 31), (2024, 2, 29)),
        (31, utc(2024, 2, 29), (2024, 2, 29), (2024, 3, 31)),
        (31, utc(2024, 3, 30), (2024, 2, 29), (2024, 3, 31)),
        (31, utc(2024, 4, 30), (2024, 4, 30), (2024, 5, 31)),
        (31, utc(2024, 4, 29), (2024, 3, 31), (2024, 4, 30)),
        (31, utc(2024, 12, 30), (2024, 11, 30), (2024, 12, 31)),
        (31, utc(2024, 12, 31), (2024, 12, 31), (2025, 1, 31)),
        (31, utc(2025, 1, 1), (2024, 12, 31), (2025, 1, 31)),
    ],
)
def test_billing_period(
    anchor: int, at: datetime, start: tuple[int, int, int], end: tuple[int, int, int]
) -> None:
    found = billing_period(anchor, at)
    assert found == period(start, end)
    assert found.contains(at)
    assert anchor_of(found) == anchor or found.start.day == found.end.day == anchor


def test_non_utc_instants_are_read_in_utc() -> None:
    # 00:30 on Mar 1 in UTC+1 is still Feb 29 in UTC.
    at = datetime(2024, 3, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))
    found = billing_period(1, at)
    assert found == period((2024, 2, 1), (2024, 3, 1))
    assert found.start.tzinfo is UTC and found.end.tzinfo is UTC


def test_periods_are_normalized_to_utc() -> None:
    plus2 = timezone(timedelta(hours=2))
    p = BillingPeriod(datetime(2024, 3, 1, 2, tzinfo=plus2), datetime(2024, 4, 1, 2, tzinfo=plus2))
    assert p == period((2024, 3, 1), (2024, 4, 1))
    assert p.start.tzinfo is UTC


@pytest.mark.parametrize("anchor", [0, 32, -1])
def test_anchor_day_must_be_a_day_of_the_month(anchor: int) -> None:
    with pytest.raises(ValueError, match="anchor day"):
        billing_period(anchor, utc(2024, 1, 1))
    with pytest.raises(ValueError, match="anchor day"):
        period_of_month(anchor, "2024-01")


def test_naive_datetimes_are_refused() -> None:
    naive = datetime(2024, 1, 1)  # noqa: DTZ001
    with pytest.raises(ValueError, match="naive"):
        billing_period(1, naive)
    with pytest.raises(ValueError, match="naive"):
        BillingPeriod(naive, utc(2024, 2, 1))
    with pytest.raises(ValueError, match="naive"):
        period((2024, 1, 1), (2024, 2, 1)).contains(naive)


@pytest.mark.parametrize("end", [utc(2024, 1, 1), utc(2023, 12, 31)])
def test_a_period_ends_after_it_starts(end: datetime) -> None:
    with pytest.raises(ValueError, match="before it starts"):
        BillingPeriod(utc(2024, 1, 1), end)


def test_contains_is_half_open() -> None:
    p = period((2024, 2, 1), (2024, 3, 1))
    assert p.contains(p.start)
    assert p.contains(p.end - MICRO)
    assert not p.contains(p.end)
    assert not p.contains(p.start - MICRO)
    assert p.duration == timedelta(days=29)


def test_next_period_walks_an_anchor_31_year() -> None:
    p = period_of_month(31, "2023-01")
    starts = [p.start]
    for _ in range(13):
        p = next_period(p)
        starts.append(p.start)
    assert [(s.year, s.month, s.day) for s in starts] == [
        (2023, 1, 31),
        (2023, 2, 28),
        (2023, 3, 31),
        (2023, 4, 30),
        (2023, 5, 31),
        (2023, 6, 30),
        (2023, 7, 31),
        (2023, 8, 31),
        (2023, 9, 30),
        (2023, 10, 31),
        (2023, 11, 30),
        (2023, 12, 31),
        (2024, 1, 31),
        (2024, 2, 29),
    ]
    assert next_period(p) == period((2024, 3, 31), (2024, 4, 30))


@pytest.mark.parametrize("anchor", range(1, 32))
def test_every_anchor_tiles_time_for_five_years(anchor: int) -> None:
    p = period_of_month(anchor, "2023-11")
    for _ in range(60):
        following = next_period(p)
        assert following.start == p.end
        assert anchor_of(p) == anchor
        days = calendar.monthrange(p.start.year, p.start.month)[1]
        assert p.start.day == min(anchor, days)
        assert p.start.time() == datetime.min.time()
        assert billing_period(anchor, p.start) == p == billing_period(anchor, p.end - MICRO)
        assert timedelta(days=28) <= p.duration <= timedelta(days=31)
        p = following


def test_next_period_refuses_a_period_that_is_not_monthly() -> None:
    with pytest.raises(ValueError, match="not a monthly billing period"):
        next_period(period((2024, 3, 1), (2024, 3, 15)))
    with pytest.raises(ValueError, match="not a monthly billing period"):
        next_period(BillingPeriod(utc(2024, 3, 1, 12), utc(2024, 4, 1, 12)))


def test_periods_between() -> None:
    assert periods_between(15, utc(2024, 1, 20), utc(2024, 4, 15)) == (
        period((2024, 1, 15), (2024, 2, 15)),
        period((2024, 2, 15), (2024, 3, 15)),
        period((2024, 3, 15), (2024, 4, 15)),
    )
    # One microsecond into the next period brings it in.
    assert len(periods_between(15, utc(2024, 1, 20), utc(2024, 4, 15) + MICRO)) == 4
    # Starting exactly on a boundary does not bring in the period before.
    assert periods_between(1, utc(2024, 2, 1), utc(2024, 2, 2)) == (
        period((2024, 2, 1), (2024, 3, 1)),
    )


def test_periods_between_across_year_end_with_anchor_31() -> None:
    found = periods_between(31, utc(2024, 11, 1), utc(2025, 3, 1))
    assert [(p.start.date().isoformat(), p.end.date().isoformat()) for p in found] == [
        ("2024-10-31", "2024-11-30"),
        ("2024-11-30", "2024-12-31"),
        ("2024-12-31", "2025-01-31"),
        ("2025-01-31", "2025-02-28"),
        ("2025-02-28", "2025-03-31"),
    ]


@pytest.mark.parametrize(
    ("start", "end"), [(utc(2024, 3, 1), utc(2024, 3, 1)), (utc(2024, 3, 2), utc(2024, 3, 1))]
)
def test_periods_between_an_empty_stretch(start: datetime, end: datetime) -> None:
    assert periods_between(1, start, end) == ()


@pytest.mark.parametrize(
    ("anchor", "month", "start", "end"),
    [
        (1, "2024-02", (2024, 2, 1), (2024, 3, 1)),
        (31, "2024-02", (2024, 2, 29), (2024, 3, 31)),
        (31, "2023-02", (2023, 2, 28), (2023, 3, 31)),
        (30, "2023-01", (2023, 1, 30), (2023, 2, 28)),
        (15, "2024-12", (2024, 12, 15), (2025, 1, 15)),
        (31, "2024-12", (2024, 12, 31), (2025, 1, 31)),
    ],
)
def test_period_of_month(
    anchor: int, month: str, start: tuple[int, int, int], end: tuple[int, int, int]
) -> None:
    assert period_of_month(anchor, month) == period(start, end)


@pytest.mark.parametrize(
    "month", ["2024-13", "2024-00", "2024-1", "24-01", "2024-02-01", "2024/02", "", " 2024-02"]
)
def test_period_of_month_refuses_what_is_not_yyyy_mm(month: str) -> None:
    with pytest.raises(ValueError, match="YYYY-MM"):
        period_of_month(1, month)


APRIL = period((2024, 4, 1), (2024, 5, 1))  # 30 days
FEB = period((2024, 2, 1), (2024, 3, 1))  # 29 days


@pytest.mark.parametrize(
    ("start", "end", "fraction"),
    [
        (utc(2024, 4, 1), utc(2024, 5, 1), "1"),
        (utc(2024, 4, 1), utc(2024, 4, 16), "0.5"),
        (utc(2024, 4, 16), utc(2024, 5, 1), "0.5"),
        (utc(2024, 4, 25), utc(2024, 5, 1), "0.2"),
        (utc(2024, 4, 1), utc(2024, 4, 1, 18), "0.025"),
        (utc(2024, 3, 1), utc(2024, 6, 1), "1"),  # clipped on both sides
        (utc(2024, 3, 20), utc(2024, 4, 16), "0.5"),  # clipped at the start
        (utc(2024, 4, 16), utc(2024, 7, 1), "0.5"),  # clipped at the end
        (utc(2024, 3, 1), utc(2024, 4, 1), "0"),  # touching, before
        (utc(2024, 5, 1), utc(2024, 6, 1), "0"),  # touching, after
        (utc(2024, 4, 10), utc(2024, 4, 10), "0"),  # empty
    ],
)
def test_proration(start: datetime, end: datetime, fraction: str) -> None:
    assert proration(start, end, APRIL) == Decimal(fraction)


def test_proration_of_a_third_keeps_sixty_digits() -> None:
    assert proration(utc(2024, 4, 1), utc(2024, 4, 11), APRIL) == Decimal("0." + "3" * 60)


def test_proration_of_one_microsecond() -> None:
    micros = 29 * 86_400 * 1_000_000
    with rating_context():
        expected = Decimal(1) / Decimal(micros)
    assert proration(utc(2024, 2, 10), utc(2024, 2, 10) + MICRO, FEB) == expected
    assert proration(utc(2024, 2, 10), utc(2024, 2, 10) + MICRO, FEB) * micros == 1


def test_proration_reads_other_offsets_in_utc() -> None:
    plus1 = timezone(timedelta(hours=1))
    start = datetime(2024, 4, 16, 1, tzinfo=plus1)  # = Apr 16 00:00 UTC
    assert proration(start, utc(2024, 5, 1), APRIL) == Decimal("0.5")


def test_proration_refuses_a_backwards_segment() -> None:
    with pytest.raises(ValueError, match="before it starts"):
        proration(utc(2024, 4, 10), utc(2024, 4, 9), APRIL)


instants = st.datetimes(
    min_value=datetime(2000, 1, 1),  # noqa: DTZ001 (hypothesis bounds are naive)
    max_value=datetime(2099, 12, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 31), instants)
def test_the_period_of_an_instant_contains_it(anchor: int, at: datetime) -> None:
    p = billing_period(anchor, at)
    assert p.contains(at)
    assert anchor_of(p) == anchor
    assert billing_period(anchor, p.end) == next_period(p)
    assert periods_between(anchor, at, at + MICRO) == (p,)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 31), instants, instants, instants)
def test_proration_is_exact_and_additive(
    anchor: int, at: datetime, a: datetime, b: datetime
) -> None:
    p = billing_period(anchor, at)
    lo, hi = sorted((a, b))
    mid = min(max(at, lo), hi)
    whole = proration(lo, hi, p)
    assert 0 <= whole <= 1
    covered = max(min(hi, p.end) - max(lo, p.start), timedelta(0))
    with rating_context():
        assert abs(whole * (p.duration // MICRO) - covered // MICRO) < Decimal("1E-40")
        assert abs(proration(lo, mid, p) + proration(mid, hi, p) - whole) < Decimal("1E-55")
