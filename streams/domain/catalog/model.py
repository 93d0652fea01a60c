"""Who pays, for which subjects, under which plan: the parties of the catalog.

Every instant is timezone-aware UTC, and every validity period is half-open,
``[effective_from, effective_to)``, with ``effective_to=None`` meaning until
further notice; so a subject moving at midnight belongs to exactly one customer
at every instant, midnight included.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, ROUND_UP, Decimal
from enum import StrEnum

from .prices import RateCard, by_key
from .tax import PostalAddress, Tax, Webhook


class Rounding(StrEnum):
    """How a line's exact amount becomes an amount in the currency's minor unit.

    Set once per catalog: every invoice line is rounded once, this way.
    """

    HALF_EVEN = "half_even"
    HALF_UP = "half_up"
    DOWN = "down"
    """Toward zero."""
    UP = "up"
    """Away from zero."""

    @property
    def decimal_mode(self) -> str:
        """The matching ``decimal.ROUND_*`` constant."""
        return {
            Rounding.HALF_EVEN: ROUND_HALF_EVEN,
            Rounding.HALF_UP: ROUND_HALF_UP,
            Rounding.DOWN: ROUND_DOWN,
            Rounding.UP: ROUND_UP,
        }[self]


DEFAULT_CREDIT_THRESHOLDS = (50, 80, 100)
"""Whole percentages of a credit grant consumed at which an alert goes out."""


class Segment(StrEnum):
    """How a customer buys: card on file and list prices, or a negotiated contract."""

    SELF_SERVICE = "self_service"
    ENTERPRISE = "enterprise"


@dataclass(frozen=True)
class RoutingRule:
    """Customers whose billing names no rail take the first matching rule's rail.

    ``segment`` and ``region`` are both optional; a rule naming neither matches all.
    """

    rail: str
    segment: Segment | None = None
    region: str | None = None

    def matches(self, segment: Segment, region: str) -> bool:
        return (self.segment is None or self.segment == segment) and (
            self.region is None or self.region == region
        )


@dataclass(frozen=True)
class BillingProfile:
    """How and where a customer's invoices are issued.

    ``rail`` names the billing rail (stripe, netsuite, outbox, ...); its topic is
    derived from the name. ``account`` is the customer's id on that rail, such as
    a Stripe ``cus_...`` id or a NetSuite internal id.

    The rest is what an e-invoice says about the buyer (``legal_name``, ``address``,
    ``vat_id``, and the VAT treatment ``tax``; required for customers on an
    :data:`E_INVOICE_RAILS` rail, optional elsewhere) and what some rails need per
    customer: ``payment_reference`` (a stored payment method id or payment
    reference) and ``webhook`` (an endpoint and where its secret is kept).
    """

    currency: str
    anchor_day: int
    rail: str
    segment: Segment
    region: str
    account: str | None = None
    legal_name: str | None = None
    address: PostalAddress | None = None
    vat_id: str | None = None
    tax: Tax | None = None
    payment_reference: str | None = None
    webhook: Webhook | None = None


E_INVOICE_RAILS = frozenset({"outbox"})
"""Rails that issue EN 16931 e-invoices, whose customers need a complete billing profile."""


@dataclass(frozen=True)
class CreditGrant:
    """Prepaid credit a customer's invoices burn down, in the customer's currency.

    Usable from ``effective_from`` until ``expires_at`` (exclusive; None: never
    expires). Grants burn in ``priority`` order (lower first), then the earliest
    expiry, then by key. ``key`` is unique across the catalog.
    """

    key: str
    amount: Decimal
    currency: str
    effective_from: datetime
    expires_at: datetime | None = None
    priority: int = 100


@dataclass(frozen=True)
class Customer:
    key: str
    name: str
    billing: BillingProfile
    credits: tuple[CreditGrant, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "credits", tuple(sorted(self.credits, key=lambda g: g.key)))


@dataclass(frozen=True)
class SubjectAssignment:
    """A metered subject (API key, workspace) billing to a customer for a period."""

    subject: str
    customer: str
    effective_from: datetime
    effective_to: datetime | None = None

    def covers(self, at: datetime) -> bool:
        return self.effective_from <= at and (self.effective_to is None or at < self.effective_to)


@dataclass(frozen=True)
class Plan:
    """List prices in one currency, and the terms every subscriber gets.

    ``discount_percent`` (0-100) comes off the usage and recurring lines of each
    period; ``maximum_spend`` caps what one period invoices (before credits).
    """

    key: str
    currency: str
    rate_card: RateCard
    name: str = ""
    discount_percent: Decimal | None = None
    maximum_spend: Decimal | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "rate_card", by_key(self.rate_card))


@dataclass(frozen=True)
class Contract:
    """Negotiated terms on top of a plan.

    ``prices`` replace the plan's prices of the same key and add new ones;
    ``minimum_commitment`` is the least invoiced per billing period, in the plan's
    currency, whatever the usage. ``discount_percent`` and ``maximum_spend``,
    when given, replace the plan's.
    """

    reference: str | None = None
    minimum_commitment: Decimal | None = None
    prices: RateCard = ()
    discount_percent: Decimal | None = None
    maximum_spend: Decimal | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "prices", by_key(self.prices))


@dataclass(frozen=True)
class Subscription:
    customer: str
    plan: str
    effective_from: datetime
    effective_to: datetime | None = None
    contract: Contract | None = None

    def covers(self, at: datetime) -> bool:
        return self.effective_from <= at and (self.effective_to is None or at < self.effective_to)
