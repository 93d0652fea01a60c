"""What a set of random scenarios exercised: so a generator that drifts is noticed.

:func:`features` counts, over the reference's own invoices, the edges the issue
asks the comparison to cover: tier bounds hit exactly and by one, package sizes,
each currency, price model, aggregation and rounding mode, partial periods, every
kind of line, credits by priority, carried, exhausted and expired, subjects moving,
duplicates, rejects, LATEST ties, seats seen in several hours, averages over
uneven hours. Plans change only at 00:00 UTC, so a share is whole days of the
period; shares whose decimal expansion never ends (5 of 30 days is 1/6, 8 of 28
is 2/7, any k of 31) must still be billed, on fees, on usage with included units,
and with a fee times its share landing on exactly half a minor unit (a tie).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from fractions import Fraction

from streams.domain.catalog import (
    Catalog,
    FlatPrice,
    GraduatedPrice,
    PackagePrice,
    VolumePrice,
)

from .money import PLACES, exact
from .periods import containing
from .rater import Bill, Line
from .usage import Reading, Screened


def features(catalog: Catalog, screened: Screened, bills: Sequence[Bill]) -> Counter[str]:
    seen: Counter[str] = Counter()
    seen[f"rounding:{catalog.rounding.value}"] += 1
    for name in ("duplicates", "rejected", "unattributed"):
        seen[name] += getattr(screened, name)
    kinds = {m.key: m.aggregation.value for m in catalog.meters}
    for bill in bills:
        seen[f"currency:{bill.currency}"] += 1
        for line in bill.lines:
            seen[f"line:{line.kind}"] += 1
            if line.share != 1:
                seen[f"partial:{line.kind}"] += 1
                seen.update(_share(line, bill.currency))
            if line.kind == "usage" and line.price is not None and line.quantity is not None:
                price, q = line.price, line.quantity
                seen[f"model:{price.model.value}"] += 1
                if line.metered:
                    seen[f"aggregation:{kinds[getattr(price, 'meter', '')]}"] += 1
                if line.metered and not q:
                    seen["included:covers_all"] += 1
                if isinstance(price, GraduatedPrice | VolumePrice):
                    bounds = {exact(t.up_to) for t in price.tiers if t.up_to is not None}
                    for name, delta in (("exact", 0), ("one_below", 1), ("one_above", -1)):
                        if q + delta in bounds:
                            seen[f"tier:{price.model.value}:{name}"] += 1
                if isinstance(price, PackagePrice) and q:
                    size = exact(price.package_size)
                    for name, delta in (("exact", 0), ("one_over", -1), ("one_under", 1)):
                        if q + delta and (q + delta) % size == 0:
                            seen[f"package:{name}"] += 1
        if bill.credits:
            seen["credit:applied"] += 1
        if len(bill.credits) > 1:
            seen["credit:several_grants"] += 1
    last: dict[str, Bill] = {}
    for bill in sorted(bills, key=lambda b: (b.customer, b.period.start)):
        before = last.get(bill.customer)
        if before is not None and before.period.end < bill.period.start:
            seen["period:quiet_between_usage"] += 1
        last[bill.customer] = bill
    seen.update(_credits(catalog, bills))
    seen.update(_readings(catalog, screened.readings))
    return seen


def _repeats(value: Fraction) -> bool:
    """Whether ``value``'s decimal expansion never ends."""
    d = value.denominator
    for p in (2, 5):
        while d % p == 0:
            d //= p
    return d != 1


def _share(line: Line, currency: str) -> Counter[str]:
    """What a line over part of a period stresses in rounding."""
    seen: Counter[str] = Counter()
    if not _repeats(line.share):
        return seen
    seen[f"share:repeating:{line.kind}"] += 1
    if line.price is not None and not isinstance(line.price, FlatPrice) and line.price.included:
        seen["share:repeating:included"] += 1
    if isinstance(line.price, FlatPrice):
        minor = exact(line.price.amount) * line.share * 10 ** PLACES[currency]
        if minor.denominator == 2:
            seen["share:fee_tie"] += 1
    return seen


def _credits(catalog: Catalog, bills: Iterable[Bill]) -> Counter[str]:
    seen: Counter[str] = Counter()
    consumed: dict[str, Fraction] = {}
    uses: Counter[str] = Counter()
    grants = {g.key: g for c in catalog.customers for g in c.credits}
    for bill in sorted(bills, key=lambda b: (b.customer, b.period.start)):
        for key, amount in bill.credits:
            consumed[key] = consumed.get(key, Fraction(0)) + amount
            uses[key] += 1
            if consumed[key] == exact(grants[key].amount):
                seen["credit:exhausted"] += 1
        owner = next(c for c in catalog.customers if c.key == bill.customer)
        for g in owner.credits:
            left = exact(g.amount) - consumed.get(g.key, Fraction(0))
            if left > 0 and g.expires_at is not None and g.expires_at <= bill.period.start:
                seen["credit:expired_with_balance"] += 1
            if left > 0 and g.effective_from >= bill.period.end and bill.total > 0:
                seen["credit:not_yet_effective"] += 1
            if g.expires_at is not None and bill.period.start < g.expires_at < bill.period.end:
                seen["credit:expires_mid_period"] += 1
    seen["credit:carried"] += sum(1 for n in uses.values() if n > 1)
    return seen


def _readings(catalog: Catalog, readings: Sequence[Reading]) -> Counter[str]:
    seen: Counter[str] = Counter()
    owners: dict[str, set[str]] = {}
    groups: dict[tuple[str, str, tuple[str, ...], object], list[Reading]] = {}
    kinds = {m.key: m.aggregation.value for m in catalog.meters}
    anchors = {c.key: c.billing.anchor_day for c in catalog.customers}
    for r in readings:
        owners.setdefault(r.subject, set()).add(r.customer)
        if "3" in r.group:
            seen["group:sent_as_number"] += 1
        if r.time.day == anchors[r.customer] and r.time.time() == r.time.min.time():
            seen["event:on_period_start"] += 1
        period = containing(anchors[r.customer], r.time)
        groups.setdefault((r.customer, r.meter, r.group, period), []).append(r)
    for (_, meter, _, _), rs in groups.items():
        hours = Counter(r.time.replace(minute=0, second=0, microsecond=0) for r in rs)
        if kinds[meter] == "UNIQUE_COUNT":
            by_value: dict[object, set[object]] = {}
            for r in rs:
                by_value.setdefault(r.value, set()).add(
                    r.time.replace(minute=0, second=0, microsecond=0)
                )
            if any(len(h) > 1 for h in by_value.values()):
                seen["seats:same_user_several_hours"] += 1
        if kinds[meter] == "AVG" and len(hours) > 1 and len(set(hours.values())) > 1:
            seen["avg:uneven_hours"] += 1
        if kinds[meter] == "LATEST":
            times = sorted(r.time for r in rs)
            if len(times) > 1 and times[-1] == times[-2]:
                seen["latest:tie"] += 1
    seen["subject:moved"] += sum(1 for customers in owners.values() if len(customers) > 1)
    return seen
