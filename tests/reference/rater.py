"""The reference rater: CloudEvents lines and a catalog to invoices, by its own route.

It reads the parsed :class:`Catalog` as data and nothing else of production:
events are screened, de-duplicated, attributed and metered in :mod:`.usage`,
aggregated in :mod:`.quantities`, priced in :mod:`.pricing`, with exact
Fractions throughout, rounded once per line in :mod:`.money`.

The business rules, in the order docs/rating.md gives them, for one customer and
one period ``[start, end)`` (where the doc is silent, the rule production follows
is written down here and marked *(code)*):

0. **Segments**: every subscription of the customer overlapping the period,
   clipped to it, in order of its start; its *share* is its length over the
   period's, exactly (an amount times a share is rounded once, from the exact
   product). No segment: no invoice. An event belongs to the segment holding its
   *time*. docs/rating.md says the segment holding the window's start, which is
   the same segment: subscriptions start and end at 00:00 UTC (the validator
   refuses any other time), so a minute, hour or day window lies inside one.
1. **Usage**: per segment, per usage price of its rate card (the plan's prices
   with the contract's replacing those of the same key) in key order, when the
   price's meter read at least one event in the segment: per meter group the
   quantity of :func:`.quantities.aggregate`, then the groups added (all of them,
   or per combination of a dimension price's dimensions, one line each, in value
   order). ``included`` units come off first: the whole amount for a whole
   period, else ``included x share`` rounded *down* to 9 places; for a dimension
   price they go to combinations in value order until used. The billable
   quantity is never below 0 *(code)*. The line amount is rounded once with the
   catalog's rounding. A line's quantity is the billable one *(code)*.
2. **Recurring**: every flat price of the segment, ``amount x share``, rounded once.
   Usage lines of every segment come before the fees of every segment *(code)*.
3. **Discount**: per segment with a non-zero ``discount_percent`` (the contract's
   when it names one, else the plan's) and a non-zero sum of its usage and fee
   lines, a line of ``-round(percent / 100 x that sum)``: the positive amount is
   rounded, then negated, so ``up``/``down`` round its size *(code)*.
4. **Commitment**: the non-zero commitments of the segments times their shares,
   summed exactly, rounded once; a subtotal below it gets a line making up the
   difference (a subtotal equal to it gets none).
5. **Cap**: only when every segment has a maximum spend (contract's, else plan's):
   the caps times their shares, summed, rounded once; a subtotal above it gets a
   negative line down to it.
6. **Credits**: on ``max(subtotal, 0)`` (adjustments are the stream's business: the
   comparisons here close each period once, after all its usage), grants in the
   invoice's currency whose
   validity overlaps the period (``effective_from < end``, ``expires_at`` None or
   ``> start``), by priority, then earliest expiry (none last), then key, each up
   to what earlier invoices left of it.

**Which periods** *(code, simulate)*: a customer's periods are rated in order
from the one holding its first metered event, credit consumption carrying from
each to the next. Asked for everything (``period=None``), the invoices of the
periods holding usage are returned; asked for a month, every customer's period
starting in that month (chained from its first usage, or from that period when
it has none before).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import MAXYEAR, UTC, datetime
from fractions import Fraction

from streams.domain.catalog import (
    Catalog,
    Contract,
    CreditGrant,
    Customer,
    DimensionPrice,
    FlatPrice,
    Plan,
    Price,
    UsagePrice,
)

from . import periods as P
from .money import exact, floor_to, round_money
from .pricing import charge
from .quantities import aggregate
from .usage import Reading, screen

Group = tuple[str, ...]


@dataclass(frozen=True)
class Line:
    kind: str
    """usage, recurring, discount, commitment or cap."""
    amount: Fraction
    price_key: str | None = None
    dimensions: tuple[tuple[str, str], ...] = ()
    quantity: Fraction | None = None
    """Usage lines: the billable quantity (metered less included)."""
    metered: Fraction | None = None
    price: Price | None = field(default=None, compare=False)
    """The price that made the line (for coverage counts, not compared)."""
    share: Fraction = Fraction(1)


@dataclass(frozen=True)
class Bill:
    customer: str
    currency: str
    period: P.Period
    lines: tuple[Line, ...]
    credits: tuple[tuple[str, Fraction], ...]
    invoice_id: str

    @property
    def subtotal(self) -> Fraction:
        return sum((line.amount for line in self.lines), Fraction(0))

    @property
    def credits_total(self) -> Fraction:
        return sum((amount for _, amount in self.credits), Fraction(0))

    @property
    def total(self) -> Fraction:
        return self.subtotal - self.credits_total


@dataclass(frozen=True)
class Segment:
    start: datetime
    end: datetime
    share: Fraction
    plan: Plan
    contract: Contract | None

    @property
    def prices(self) -> list[Price]:
        by_key: dict[str, Price] = {p.key: p for p in self.plan.rate_card}
        for p in self.contract.prices if self.contract else ():
            by_key[p.key] = p
        return [by_key[k] for k in sorted(by_key)]

    @property
    def discount(self) -> Fraction:
        if self.contract is not None and self.contract.discount_percent is not None:
            return exact(self.contract.discount_percent)
        return exact(self.plan.discount_percent or 0)

    @property
    def cap(self) -> Fraction | None:
        if self.contract is not None and self.contract.maximum_spend is not None:
            return exact(self.contract.maximum_spend)
        return None if self.plan.maximum_spend is None else exact(self.plan.maximum_spend)

    @property
    def commitment(self) -> Fraction:
        return exact(self.contract.minimum_commitment or 0) if self.contract else Fraction(0)


def reference_invoices(
    catalog: Catalog,
    lines: Iterable[str | bytes],
    period: str | None = None,
    clock: tuple[datetime, datetime] | None = None,
) -> list[Bill]:
    """The invoices ``simulate`` is to issue for ``lines``: every period with usage
    (``period=None``) or every customer's period starting in ``period`` (YYYY-MM).
    ``clock``: the range of event times ingest accepts (see :func:`.usage.screen`)."""
    readings: dict[str, list[Reading]] = {}
    for r in screen(catalog, lines, clock).readings:
        readings.setdefault(r.customer, []).append(r)
    bills: list[Bill] = []
    for customer in sorted(c.key for c in catalog.customers):
        found = _customer(catalog, customer)
        mine = readings.get(customer, [])
        anchor = found.billing.anchor_day
        if period is None:
            if not mine:
                continue
            times = [r.time for r in mine]
            chain = P.chain(anchor, min(times), max(times))
            wanted = {P.containing(anchor, t) for t in times}
        else:
            year, month = (int(x) for x in period.split("-"))
            chosen = P.starting_in(anchor, year, month)
            first = min((r.time for r in mine), default=chosen.start)
            chain = P.chain(anchor, min(first, chosen.start), chosen.start)
            wanted = {chosen}
        consumed: dict[str, Fraction] = {}
        for p in chain:
            bill = rate(catalog, found, p, mine, consumed)
            if bill is None:
                continue
            for grant, amount in bill.credits:
                consumed[grant] = consumed.get(grant, Fraction(0)) + amount
            if p in wanted:
                bills.append(bill)
    return bills


def _customer(catalog: Catalog, key: str) -> Customer:
    return next(c for c in catalog.customers if c.key == key)


def segments(catalog: Catalog, customer: str, period: P.Period) -> list[Segment]:
    subs = sorted(
        (s for s in catalog.subscriptions if s.customer == customer),
        key=lambda s: s.effective_from,
    )
    out: list[Segment] = []
    for s in subs:
        start = max(s.effective_from, period.start)
        end = period.end if s.effective_to is None else min(s.effective_to, period.end)
        if end <= start:
            continue
        plan = next(p for p in catalog.plans if p.key == s.plan)
        out.append(Segment(start, end, P.share(start, end, period), plan, s.contract))
    return out


def usage_by_group(
    catalog: Catalog, segment: Segment, readings: Sequence[Reading]
) -> dict[str, dict[Group, Fraction]]:
    """Per meter that read events in the segment, the quantity of each group."""
    kinds = {m.key: m.aggregation.value for m in catalog.meters}
    grouped: dict[str, dict[Group, list[Reading]]] = {}
    for r in readings:
        if segment.start <= r.time < segment.end and r.meter in kinds:
            grouped.setdefault(r.meter, {}).setdefault(r.group, []).append(r)
    return {
        meter: {g: aggregate(kinds[meter], rs) for g, rs in groups.items()}
        for meter, groups in grouped.items()
    }


def rate(
    catalog: Catalog,
    customer: Customer,
    period: P.Period,
    readings: Sequence[Reading],
    consumed: dict[str, Fraction],
) -> Bill | None:
    segs = segments(catalog, customer.key, period)
    if not segs:
        return None
    currency = customer.billing.currency
    mode = catalog.rounding.value

    def rounded(amount: Fraction) -> Fraction:
        return round_money(amount, currency, mode)

    group_by = {m.key: m.group_by for m in catalog.meters}
    usage: list[Line] = []
    fees: list[Line] = []
    discounts: list[Line] = []
    for seg in segs:
        used = usage_by_group(catalog, seg, readings)
        own: list[Line] = []
        for price in seg.prices:
            if isinstance(price, FlatPrice):
                amount = rounded(exact(price.amount) * seg.share)
                fee = Line("recurring", amount, price.key, price=price, share=seg.share)
                fees.append(fee)
                own.append(fee)
            elif price.meter in used:
                for x in _usage_lines(price, used[price.meter], group_by[price.meter], seg):
                    line = replace(x, amount=rounded(x.amount))
                    usage.append(line)
                    own.append(line)
        base = sum((x.amount for x in own), Fraction(0))
        if seg.discount and base:
            discounts.append(Line("discount", -rounded(seg.discount / 100 * base)))
    lines = usage + fees + discounts
    subtotal = sum((x.amount for x in lines), Fraction(0))
    commitments = [seg.commitment * seg.share for seg in segs if seg.commitment]
    if commitments:
        floor = rounded(sum(commitments, Fraction(0)))
        if subtotal < floor:
            lines.append(Line("commitment", floor - subtotal))
            subtotal = floor
    caps = [(seg.cap, seg.share) for seg in segs]
    if all(cap is not None for cap, _ in caps):
        ceiling = rounded(sum((c * share for c, share in caps if c is not None), Fraction(0)))
        if subtotal > ceiling:
            lines.append(Line("cap", ceiling - subtotal))
            subtotal = ceiling
    credits = burn(customer.credits, consumed, max(subtotal, Fraction(0)), period, currency)
    return Bill(
        customer.key,
        currency,
        period,
        tuple(lines),
        credits,
        invoice_id(customer.key, period.start, currency),
    )


def _usage_lines(
    price: UsagePrice, groups: dict[Group, Fraction], group_by: tuple[str, ...], seg: Segment
) -> list[Line]:
    """Unrounded usage lines of one price: one, or one per dimension combination."""
    dims = price.dimensions if isinstance(price, DimensionPrice) else ()
    combos: dict[Group, Fraction] = {}
    for group, quantity in groups.items():
        values = dict(zip(group_by, group, strict=True))
        combo = tuple(values.get(d, "") for d in dims)
        combos[combo] = combos.get(combo, Fraction(0)) + quantity
    free = exact(price.included)
    if seg.share != 1:
        free = floor_to(free * seg.share, 9)
    out: list[Line] = []
    for combo in sorted(combos):
        metered = combos[combo]
        used = min(free, metered)
        free -= used
        billable = max(metered - used, Fraction(0))
        values = dict(zip(dims, combo, strict=True))
        amount = charge(price, billable, values)
        dimensions = tuple(values.items())
        out.append(
            Line("usage", amount, price.key, dimensions, billable, metered, price, seg.share)
        )
    return out


_NEVER = datetime(MAXYEAR, 12, 31, tzinfo=UTC)


def burn(
    grants: Sequence[CreditGrant],
    consumed: dict[str, Fraction],
    due: Fraction,
    period: P.Period,
    currency: str,
) -> tuple[tuple[str, Fraction], ...]:
    usable = [
        g
        for g in grants
        if g.currency == currency
        and g.effective_from < period.end
        and (g.expires_at is None or g.expires_at > period.start)
    ]
    usable.sort(key=lambda g: (g.priority, g.expires_at or _NEVER, g.key))
    applied: list[tuple[str, Fraction]] = []
    for g in usable:
        if due <= 0:
            break
        left = max(exact(g.amount) - consumed.get(g.key, Fraction(0)), Fraction(0))
        take = min(left, due)
        if take > 0:
            applied.append((g.key, take))
            due -= take
    return tuple(applied)


def invoice_id(customer: str, period_start: datetime, currency: str) -> str:
    """``inv_`` and 24 hex digits of SHA-256 over ``invoice|customer|start|currency``."""
    seed = f"invoice|{customer}|{period_start.isoformat()}|{currency}"
    return "inv_" + hashlib.sha256(seed.encode()).hexdigest()[:24]
