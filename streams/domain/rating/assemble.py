"""Invoice assembly: a customer's billing period, from window totals to an :class:`Invoice`.

A pure function of the catalog, the customer's usage, the credit already
consumed and any adjustments. The rate stage measures usage from window partials
and late usage; the batch oracle (:mod:`.simulate`) measures it from the raw
events by its own route; both price it through :func:`rate_period`. The order of application is documented in
``docs/rating.md``; in short, per plan segment (a) usage lines and (b) prorated
recurring fees, then (c) the percentage discount, (d) the minimum-commitment
true-up, (e) the maximum-spend cap, (f) adjustments, and (g) prepaid credit.
Each line is rounded once; subtotal is the sum of lines, total is subtotal less
credit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType

from streams.domain.catalog import Catalog, Customer, fits_currency
from streams.domain.invoice import (
    CreditApplication,
    DocumentKind,
    Invoice,
    InvoiceLine,
    LineKind,
    invoice_identity,
)

from .credits import apply_credits
from .inputs import LateQuantity, UsageSource, WindowedUsage, WindowTotal
from .money import Rounding, rating_context
from .periods import BillingPeriod, prorate
from .terms import PlanSegment, RatingError, plan_segments
from .usage_lines import Money, recurring_lines, usage_lines

__all__ = [
    "LateQuantity",
    "UsageSource",
    "WindowTotal",
    "credit_note",
    "rate_period",
    "running_total",
    "usage_amount",
]

_ZERO = Decimal(0)
_NOTHING: Mapping[str, Decimal] = MappingProxyType({})


def rate_period(
    catalog: Catalog,
    customer: str,
    period: BillingPeriod,
    windows: Iterable[WindowTotal] | UsageSource,
    late: Iterable[LateQuantity] = (),
    consumed_credits: Mapping[str, Decimal] = _NOTHING,
    adjustments: Sequence[InvoiceLine] = (),
    issued_at: datetime | None = None,
) -> Invoice | None:
    """The invoice of ``customer`` for ``period``; None when no subscription overlaps it.

    ``windows`` is the customer's usage: a :class:`UsageSource`, or its window
    totals (any outside the period are ignored) with ``late`` its late usage
    (both measured by :class:`WindowedUsage`),
    ``consumed_credits`` what earlier invoices burned of each grant, and
    ``adjustments`` corrections to earlier periods, each already rounded.
    ``issued_at`` defaults to the period's end. RatingError when the catalog
    cannot rate the period; UnpricedUsage when usage has no rate.
    """
    found = catalog.customer(customer)
    segments = plan_segments(catalog, customer, period)
    if found is None or not segments:
        return None
    money = Money(found.billing.currency, catalog.rounding)
    meters = {m.key: m for m in catalog.meters}
    usage = windows if isinstance(windows, UsageSource) else WindowedUsage(windows, late, meters)
    charges: list[InvoiceLine] = []
    discounts: list[InvoiceLine] = []
    for segment in segments:
        lines = usage_lines(segment, usage, meters, money) + recurring_lines(segment, money)
        charges += lines
        discount = _discount(segment, lines, money)
        if discount is not None:
            discounts.append(discount)
    charges.sort(key=_kind_order)  # usage of every segment first, then the fees
    lines = charges + discounts
    lines += _commitment_and_cap(segments, _sum(lines), money)
    lines += _checked(adjustments, money)
    subtotal = _sum(lines)
    credits = apply_credits(
        found.credits,
        consumed_credits,
        max(subtotal, _ZERO),
        period,
        currency=money.currency,
    )
    return _invoice(
        catalog, found, period, DocumentKind.INVOICE, lines, credits, issued_at or period.end
    )


def running_total(
    catalog: Catalog,
    customer: str,
    period: BillingPeriod,
    windows: Iterable[WindowTotal],
    as_of: datetime,
    late: Iterable[LateQuantity] = (),
    consumed_credits: Mapping[str, Decimal] = _NOTHING,
) -> Invoice | None:
    """The open period's invoice as it would be if it closed at ``as_of``.

    Only windows starting and late usage stamped before ``as_of`` count. Fees are
    the period's full fees and the commitment true-up is included, so ``total``
    is the least this period will cost; :func:`usage_amount` is the usage so far.
    """
    return rate_period(
        catalog,
        customer,
        period,
        (w for w in windows if w.window_start < as_of),
        (q for q in late if q.time < as_of),
        consumed_credits,
        issued_at=as_of,
    )


def usage_amount(invoice: Invoice) -> Decimal:
    """The sum of an invoice's usage lines."""
    return _sum(line for line in invoice.lines if line.kind is LineKind.USAGE)


def credit_note(
    catalog: Catalog,
    customer: str,
    period: BillingPeriod,
    adjustments: Sequence[InvoiceLine],
    issued_at: datetime | None = None,
) -> Invoice:
    """A credit note for corrections to ``period`` that have no next invoice to ride on.

    Identified like an invoice of the period, as a credit note; its total must be
    negative (a correction that owes money is an invoice). No credit is applied.
    """
    found = catalog.customer(customer)
    if found is None:
        raise RatingError(f"no customer {customer!r} in catalog {catalog.version}")
    lines = _checked(adjustments, Money(found.billing.currency, Rounding.HALF_EVEN))
    if _sum(lines) >= 0:
        raise ValueError(f"a credit note must credit something; its lines add up to {_sum(lines)}")
    kind = DocumentKind.CREDIT_NOTE
    return _invoice(catalog, found, period, kind, lines, (), issued_at or period.end)


def _discount(
    segment: PlanSegment, lines: Sequence[InvoiceLine], money: Money
) -> InvoiceLine | None:
    percent = segment.discount_percent
    base = _sum(lines)
    if not percent or not base:
        return None
    with rating_context():
        amount = -money.round(base * percent / 100)
    reference = segment.subscription.contract and segment.subscription.contract.reference
    return InvoiceLine(
        kind=LineKind.DISCOUNT,
        description=f"Discount {percent}%" + (f" ({reference})" if reference else ""),
        amount=amount,
        service_start=segment.start,
        service_end=segment.end,
    )


def _commitment_and_cap(
    segments: Sequence[PlanSegment], subtotal: Decimal, money: Money
) -> list[InvoiceLine]:
    """(d) and (e): a true-up up to the commitment, then a cut down to the cap.

    Over a period split between segments, each contributes its commitment and cap
    prorated by the share it covers. The cap binds only when every segment has one.
    """
    start, end = segments[0].start, segments[-1].end
    out: list[InvoiceLine] = []
    commitments = [(s.minimum_commitment, s.share) for s in segments if s.minimum_commitment]
    if commitments:
        floor = money.round(prorate(*commitments))
        if subtotal < floor:
            description = f"Minimum commitment {floor} {money.currency}"
            out.append(_term_line(LineKind.COMMITMENT, description, floor - subtotal, start, end))
            subtotal = floor
    caps = [(s.maximum_spend, s.share) for s in segments]
    if all(cap is not None for cap, _ in caps):
        ceiling = money.round(prorate(*((c, f) for c, f in caps if c is not None)))
        if subtotal > ceiling:
            description = f"Maximum spend {ceiling} {money.currency}"
            out.append(_term_line(LineKind.CAP, description, ceiling - subtotal, start, end))
    return out


def _term_line(
    kind: LineKind, description: str, amount: Decimal, start: datetime, end: datetime
) -> InvoiceLine:
    return InvoiceLine(kind, description, amount, service_start=start, service_end=end)


def _checked(adjustments: Sequence[InvoiceLine], money: Money) -> list[InvoiceLine]:
    """Adjustment lines as given; ValueError for one finer than the currency's minor unit."""
    for line in adjustments:
        if not line.amount.is_finite() or not fits_currency(line.amount, money.currency):
            raise ValueError(
                f"adjustment {line.description!r}: {line.amount} is not in {money.currency}'s "
                "minor unit; round it when it is computed"
            )
    return list(adjustments)


def _invoice(
    catalog: Catalog,
    customer: Customer,
    period: BillingPeriod,
    kind: DocumentKind,
    lines: Sequence[InvoiceLine],
    credits: Sequence[CreditApplication],
    issued_at: datetime,
) -> Invoice:
    applied = tuple(credits)
    billing = customer.billing
    invoice_id, number, key = invoice_identity(customer.key, period.start, billing.currency, kind)
    subtotal = _sum(lines)
    credits_total = _sum(c.amount for c in applied)
    return Invoice(
        id=invoice_id,
        number=number,
        kind=kind,
        customer=customer.key,
        customer_name=customer.name,
        rail=billing.rail,
        account=billing.account,
        currency=billing.currency,
        period_start=period.start,
        period_end=period.end,
        lines=tuple(lines),
        credits=applied,
        subtotal=subtotal,
        discount_total=_sum(x.amount for x in lines if x.kind is LineKind.DISCOUNT),
        commitment_true_up=_sum(x.amount for x in lines if x.kind is LineKind.COMMITMENT),
        credits_total=credits_total,
        total=subtotal - credits_total,
        idempotency_key=key,
        catalog_version=catalog.version,
        issued_at=issued_at,
    )


_ORDER = {kind: i for i, kind in enumerate(LineKind)}


def _kind_order(line: InvoiceLine) -> int:
    return _ORDER[line.kind]


def _sum(amounts: Iterable[InvoiceLine] | Iterable[Decimal]) -> Decimal:
    total = _ZERO
    with rating_context():  # the default 28 digits could round a large total
        for item in amounts:
            total += item.amount if isinstance(item, InvoiceLine) else item
    return total
