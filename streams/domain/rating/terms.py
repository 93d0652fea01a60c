"""The terms in force over a billing period: one segment per subscription that overlaps it.

A customer has at most one subscription at a time, but a period can hold several
(an upgrade on the 9th splits it in two). Each :class:`PlanSegment` is one
subscription clipped to the period, with its rate card and the plan and
contract terms it brings; invoice assembly rates each segment on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from fractions import Fraction

from streams.domain.catalog import Catalog, Plan, RateCard, Subscription, merge_rate_cards
from streams.domain.errors import RailyardError

from .money import rating_context
from .periods import BillingPeriod, prorate, share


class RatingError(RailyardError):
    """The catalog cannot rate this customer's period as it stands (fix it, then re-rate)."""


@dataclass(frozen=True)
class PlanSegment:
    """One subscription over ``[start, end)``, the part of the period it covers."""

    subscription: Subscription
    plan: Plan
    start: datetime
    end: datetime
    share: Fraction
    """Share of the period covered, exactly (:func:`.periods.share`): 1 for a whole period."""

    @property
    def fraction(self) -> Decimal:
        """:attr:`share` as a Decimal (60 digits for a third): to show, not to multiply by."""
        with rating_context():
            return Decimal(self.share.numerator) / Decimal(self.share.denominator)

    def prorate(self, amount: Decimal) -> Decimal:
        """``amount`` times the share, exact wherever rounding could tell the difference
        (:func:`.periods.prorate`): JPY 5139 over 1/6 of a period is 856.5, not 856.50...03."""
        return prorate((amount, self.share))

    @property
    def rate_card(self) -> RateCard:
        """The plan's prices with the contract's in their place."""
        contract = self.subscription.contract
        return merge_rate_cards(self.plan.rate_card, contract.prices if contract else ())

    @property
    def discount_percent(self) -> Decimal | None:
        """The contract's discount if it names one, else the plan's."""
        contract = self.subscription.contract
        if contract is not None and contract.discount_percent is not None:
            return contract.discount_percent
        return self.plan.discount_percent

    @property
    def maximum_spend(self) -> Decimal | None:
        """The contract's cap if it names one, else the plan's (per whole period)."""
        contract = self.subscription.contract
        if contract is not None and contract.maximum_spend is not None:
            return contract.maximum_spend
        return self.plan.maximum_spend

    @property
    def minimum_commitment(self) -> Decimal | None:
        contract = self.subscription.contract
        return contract.minimum_commitment if contract else None

    @property
    def whole(self) -> bool:
        return self.share == 1

    def covers(self, at: datetime) -> bool:
        return self.start <= at < self.end


def plan_segments(
    catalog: Catalog, customer: str, period: BillingPeriod
) -> tuple[PlanSegment, ...]:
    """The subscriptions of ``customer`` overlapping ``period``, clipped to it, in time order.

    RatingError when a subscription names a plan the catalog lacks or a plan in
    another currency than the customer's (the catalog validator refuses both, so
    this only guards against a hand-built catalog).
    """
    found = catalog.customer(customer)
    if found is None:
        return ()
    currency = found.billing.currency
    segments: list[PlanSegment] = []
    for sub in catalog.subscriptions:  # in (customer, effective_from) order
        if sub.customer != customer:
            continue
        start = max(sub.effective_from, period.start)
        end = period.end if sub.effective_to is None else min(sub.effective_to, period.end)
        if end <= start:
            continue
        plan = catalog.plan(sub.plan)
        if plan is None:
            raise RatingError(f"customer {customer!r} is subscribed to unknown plan {sub.plan!r}")
        if plan.currency != currency:
            raise RatingError(
                f"customer {customer!r} is billed in {currency} but its plan {plan.key!r} "
                f"is priced in {plan.currency}; the catalog validator should have refused this"
            )
        segments.append(PlanSegment(sub, plan, start, end, share(start, end, period)))
    return tuple(segments)
