"""Prepaid credit: which grants an invoice burns, what is left, and when to alert.

Pure functions of the grants and of how much of each was consumed by earlier
invoices; the caller keeps that consumption (a compacted topic, a table) and
passes it in, so re-rating a period gives the very same applications.

Rules, decided once:

* A grant is *usable* by the invoice of ``period`` when it is in the invoice's
  currency and its validity overlaps the period at all:
  ``effective_from < period.end`` and (``expires_at`` is None or
  ``expires_at > period.start``). A grant that starts on the last day still
  pays for the whole period; one that expired before the period began pays nothing.
* Usable grants burn in order of ``priority`` (lower first), then the earliest
  ``expires_at`` (a grant that never expires last), then ``key``.
* Credit only ever reduces an amount due to zero, never below: an invoice whose
  subtotal is zero or negative burns nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import MAXYEAR, UTC, datetime
from decimal import Decimal
from enum import StrEnum

from streams.domain.catalog import CreditGrant
from streams.domain.invoice import CreditApplication

from .periods import BillingPeriod

_ZERO = Decimal(0)
_NEVER = datetime(MAXYEAR, 12, 31, tzinfo=UTC)


class CreditEventKind(StrEnum):
    THRESHOLD = "threshold"
    """A configured share of the grant was consumed."""
    EXHAUSTED = "exhausted"
    """Nothing is left of the grant."""


@dataclass(frozen=True)
class CreditEvent:
    """An alert: a grant crossed ``percent`` consumed (``exhausted``: 100, nothing left)."""

    customer: str
    grant: str
    kind: CreditEventKind
    percent: int
    remaining: Decimal
    currency: str
    at: datetime
    """Event time of the rating that observed the crossing (the invoice's issue time)."""


def burn_order(grant: CreditGrant) -> tuple[int, datetime, str]:
    """Sort key: priority, then earliest expiry (no expiry last), then key."""
    return (grant.priority, grant.expires_at or _NEVER, grant.key)


def usable(grant: CreditGrant, period: BillingPeriod, currency: str) -> bool:
    """True when ``grant`` may pay the invoice of ``period`` in ``currency``."""
    return (
        grant.currency == currency
        and grant.effective_from < period.end
        and (grant.expires_at is None or grant.expires_at > period.start)
    )


def remaining(grant: CreditGrant, consumed: Mapping[str, Decimal]) -> Decimal:
    """What is left of ``grant`` after ``consumed`` (never negative)."""
    return max(grant.amount - consumed.get(grant.key, _ZERO), _ZERO)


def apply_credits(
    grants: Iterable[CreditGrant],
    consumed_before: Mapping[str, Decimal],
    amount_due: Decimal,
    period: BillingPeriod,
    *,
    currency: str,
) -> tuple[CreditApplication, ...]:
    """The credit each usable grant contributes to ``amount_due``, in burn order.

    ``consumed_before`` is what earlier invoices burned of each grant (by key).
    Grants with nothing left contribute nothing and are left out; the sum of the
    applications never exceeds ``amount_due``. Amounts stay in the currency's
    minor unit as long as the grants and ``amount_due`` are.
    """
    left = amount_due
    applied: list[CreditApplication] = []
    for grant in sorted((g for g in grants if usable(g, period, currency)), key=burn_order):
        if left <= 0:
            break
        burn = min(remaining(grant, consumed_before), left)
        if burn > 0:
            applied.append(CreditApplication(grant.key, burn))
            left -= burn
    return tuple(applied)


def consumed_after(
    consumed_before: Mapping[str, Decimal], applied: Iterable[CreditApplication]
) -> dict[str, Decimal]:
    """Consumption per grant once ``applied`` is added to ``consumed_before``."""
    out = dict(consumed_before)
    for application in applied:
        out[application.grant] = out.get(application.grant, _ZERO) + application.amount
    return out


def balances(
    grants: Iterable[CreditGrant], consumed: Mapping[str, Decimal], at: datetime
) -> dict[str, Decimal]:
    """What is left of each grant at ``at``, by key: 0 once it has expired.

    A grant not yet effective shows its full remaining amount: it is owed, only
    not spendable yet.
    """
    return {
        g.key: _ZERO if g.expires_at is not None and g.expires_at <= at else remaining(g, consumed)
        for g in grants
    }


def threshold_events(
    grants: Iterable[CreditGrant],
    consumed_before: Mapping[str, Decimal],
    consumed_after: Mapping[str, Decimal],
    thresholds: Iterable[int],
    *,
    customer: str,
    at: datetime,
) -> list[CreditEvent]:
    """The alerts for every threshold a grant's consumption crossed, each exactly once.

    A threshold ``t`` (percent) is crossed when consumption goes from below
    ``t%`` of the grant to at least ``t%``; consumption that only repeats or goes
    back down crosses nothing, so re-rating with the same numbers fires nothing.
    Thresholds under 100 fire ``threshold`` events; using up the grant fires one
    ``exhausted`` event (percent 100) whether or not 100 is among the thresholds.
    Events come in burn order, then by percent.
    """
    wanted = sorted({t for t in thresholds if 0 < t < 100})
    events: list[CreditEvent] = []
    for grant in sorted(grants, key=burn_order):
        before = consumed_before.get(grant.key, _ZERO)
        after = consumed_after.get(grant.key, _ZERO)
        left = max(grant.amount - after, _ZERO)
        crossed = [
            (CreditEventKind.THRESHOLD, percent)
            for percent in wanted
            # Exact: consumed * 100 against percent * amount, never a rounded ratio.
            if before * 100 < percent * grant.amount <= after * 100
        ]
        if before < grant.amount <= after:
            crossed.append((CreditEventKind.EXHAUSTED, 100))
        events += [
            CreditEvent(customer, grant.key, kind, percent, left, grant.currency, at)
            for kind, percent in crossed
        ]
    return events
