"""Prorating stays exact: an amount times a share of a period is rounded once, not twice.

A share such as 1/6 has no finite decimal expansion. Multiplied as a 60-digit Decimal
(0.1666...67) it lifts JPY 5139 x 1/6 = 856.5 to 856.5000...03, which rounds half-even
to 857 instead of 856, and 186 included units x 91/372 (exactly 45.5) come out as
45.4999...9, rounded down to 45.499999999. :func:`prorate` divides once, at the end.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction

from streams.domain.catalog import parse_catalog
from streams.domain.rating import Rounding, rating_context, round_money
from streams.domain.rating.periods import BillingPeriod, prorate, proration, share
from streams.domain.rating.terms import plan_segments

JUNE = BillingPeriod(datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC))


def at(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 6, day, hour, tzinfo=UTC)


def test_share_is_the_exact_fraction_of_the_period() -> None:
    assert share(at(26), JUNE.end, JUNE) == Fraction(1, 6)  # 5 of 30 days
    assert share(at(1), at(11), JUNE) == Fraction(1, 3)
    assert share(datetime(2026, 5, 1, tzinfo=UTC), at(16), JUNE) == Fraction(1, 2)  # clipped
    assert share(at(10), at(10), JUNE) == 0


def test_a_fee_over_a_sixth_of_a_period_is_rounded_once() -> None:
    sixth = Fraction(1, 6)
    assert prorate((Decimal(5139), sixth)) == Decimal("856.5")
    assert round_money(prorate((Decimal(5139), sixth)), "JPY") == Decimal(856)  # half-even
    # What multiplying by the 60-digit Decimal gave (rating runs at 60 digits):
    with rating_context():
        twice = Decimal(5139) * proration(at(1), at(6), JUNE)
    assert round_money(twice, "JPY") == Decimal(857)


def test_prorated_free_units_land_on_the_boundary() -> None:
    assert prorate((Decimal(186), Fraction(91, 372))) == Decimal("45.5")


def test_a_sum_of_prorated_terms_is_divided_once() -> None:
    third = Fraction(1, 3)
    hundred = Decimal("100.00")
    assert prorate((hundred, third), (hundred, third), (hundred, third)) == 100
    assert round_money(prorate((hundred, third), (hundred, 2 * third)), "EUR", Rounding.DOWN) == 100


def test_an_endless_share_still_carries_sixty_digits() -> None:
    assert prorate((Decimal(1), Fraction(1, 3))) == Decimal("0." + "3" * 60)


CATALOG = """
meters:
  - {key: calls, event_type: api.calls, aggregation: COUNT}
customers:
  - key: acme
    billing: {currency: JPY, anchor_day: 1, rail: stripe, segment: self_service, region: eu}
plans:
  - key: small
    currency: JPY
    rate_card: [{key: fee, model: flat, amount: "6000"}]
  - key: big
    currency: JPY
    rate_card: [{key: fee, model: flat, amount: "5139"}]
subscriptions:
  - {customer: acme, plan: small, effective_from: "2026-01-01T00:00:00Z",
     effective_to: "2026-06-26T00:00:00Z"}
  - {customer: acme, plan: big, effective_from: "2026-06-26T00:00:00Z"}
"""


def test_plan_segments_carry_exact_shares() -> None:
    catalog, problems = parse_catalog(CATALOG)
    assert catalog is not None, problems
    before, after = plan_segments(catalog, "acme", JUNE)
    assert (before.share, after.share) == (Fraction(5, 6), Fraction(1, 6))
    assert after.prorate(Decimal(5139)) == Decimal("856.5")
    assert before.prorate(Decimal(6000)) == 5000
    assert not after.whole and after.fraction == proration(at(26), JUNE.end, JUNE)
