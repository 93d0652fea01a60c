"""Random catalogs with matching usage, deterministic from a seed.

:func:`scenario` draws customers in JPY (0 decimals), EUR or USD (2) and KWD or
BHD (3), on random anchor days and rails, with subjects (one moving between two
customers mid-period at any second, one assigned late, one owned by nobody),
subscriptions that change plan, start late, end early or pause at 00:00 UTC (the
only time the catalog allows), often on a day splitting the period as 1/3, 1/6 or
2/7 do, contracts with commitments, discounts, caps and their own prices, and
credit grants with priorities, effective dates and expiries on period boundaries
or mid-period.
Rate cards use every price model on every aggregation (SUM, COUNT, UNIQUE_COUNT
seats, AVG, MAX peaks, MIN, LATEST); graduated and volume tiers and package
sizes are placed on the quantities the usage actually reaches, exactly and one
unit either side, so boundaries are hit. The catalog is built in three passes:
usage first, then rate cards around its quantities, then commitments, caps and
credits around the amounts those rate cards bill (measured with the reference
rater: the generator only aims, the comparison is what tests).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from functools import cached_property
from typing import Any

import yaml

from streams.domain.catalog import Catalog, parse_catalog

from . import periods as P
from .events import GROUPS, MAY_BE_MISSING, METERS_YAML, Owned, Usage
from .money import PLACES, floor_to
from .rater import rate, segments, usage_by_group
from .usage import screen

SCALE = {
    "JPY": Decimal(100),
    "EUR": Decimal(1),
    "USD": Decimal(1),
    "KWD": Decimal("0.3"),
    "BHD": Decimal("0.4"),
}
"""Roughly what one euro is worth in each currency, so amounts stay plausible."""
RAILS = (
    ("stripe", "self_service"),
    ("adyen", "self_service"),
    ("paypal", "self_service"),
    ("webhook", "self_service"),
    ("netsuite", "enterprise"),
    ("sap", "enterprise"),
    ("salesforce", "enterprise"),
    ("outbox", "enterprise"),
)
UNIT_AMOUNTS = (
    "0.000002",
    "0.0000125",
    "0.00037",
    "0.005",
    "0.0125",
    "0.015",
    "0.25",
    "0.5",
    "1.5",
    "2.345",
    "7",
    "12.5",
    "0.333",
)
DISCOUNTS = ("5", "7.5", "10", "12.345", "33.3333", "50", "100")
MODELS = ("per_unit", "graduated", "graduated", "volume", "volume", "package", "dimension")
ROUNDINGS = ("half_even", "half_even", "half_up", "down", "up")


@dataclass(frozen=True)
class Scenario:
    seed: int
    yaml: str
    lines: tuple[str, ...]
    months: tuple[str, ...]
    """Every month (YYYY-MM) in which some customer's period with usage starts."""
    as_of: datetime
    """An instant after every event: the clock to judge them against."""

    @cached_property
    def catalog(self) -> Catalog:
        return _parse(self.yaml)


@dataclass
class Customer:
    key: str
    currency: str
    anchor: int
    rail: str
    segment: str
    span: tuple[datetime, datetime]
    """When its events happen."""
    subs: list[dict[str, Any]] = field(default_factory=list)
    grants: list[dict[str, Any]] = field(default_factory=list)


def scenario(
    seed: int,
    *,
    aligned: bool = False,
    first_month: tuple[int, int] | None = None,
    customers: int | None = None,
    events: int | None = None,
) -> Scenario:
    """A random catalog and its usage.

    ``first_month`` (year, month) is when usage starts (a random month of 2026 by
    default). ``aligned``: the shape a stream test closes month by month: each
    customer's usage covers its two periods that start in ``first_month`` and the
    month after, from their first hour. Plans change at 00:00 UTC either way.
    """
    rng = random.Random(seed)
    year, month = first_month or (2026, rng.randint(1, 9))
    count = customers or rng.randint(3, 5)
    currencies = ["JPY", rng.choice(("EUR", "USD")), rng.choice(("KWD", "BHD"))]
    currencies += [rng.choice(tuple(SCALE)) for _ in range(count)]
    rng.shuffle(currencies)
    start = datetime(year, month, rng.randint(1, 28), tzinfo=UTC)
    end = start + timedelta(days=rng.randint(35, 75))
    custs: list[Customer] = []
    for i in range(count):
        anchor = rng.randint(1, 28)
        rail, segment = rng.choice(RAILS)
        span = (start, end)
        if aligned:
            span = (P.starting_in(anchor, year, month).start, P.after(anchor, year, month, 1).end)
        custs.append(Customer(f"cust-{seed}-{i}", currencies[i], anchor, rail, segment, span))
    owned = _subjects(rng, seed, custs)
    for c in custs:
        _subscriptions(rng, c)
    usage = _usage(rng, seed, custs, owned, events or rng.randint(150, 350), aligned)
    lines = usage.lines()
    # Pass 1: what the usage amounts to, per plan and meter, with placeholder prices.
    draft = _yaml(rng, custs, owned, {}, "half_even")
    records = _records(_parse(draft), custs, lines)
    plans = {
        sub["plan"]: _plan(rng, c, records.get(sub["plan"], {})) for c in custs for sub in c.subs
    }
    for c in custs:
        for sub in c.subs:
            if rng.random() < 0.4:
                sub["contract"] = _contract(rng, c, records.get(sub["plan"], {}))
    rounding = rng.choice(ROUNDINGS)
    # Pass 2: what those prices bill; pass 3 sets commitments, caps and credits around it.
    priced = _parse(_yaml(rng, custs, owned, plans, rounding))
    subtotals = _subtotals(priced, custs, lines)
    for c in custs:
        _terms(rng, c, plans, subtotals.get(c.key) or [Fraction(0)])
        _grants(rng, c, subtotals.get(c.key) or [Fraction(0)])
    text = _yaml(rng, custs, owned, plans, rounding)
    _parse(text)  # valid, or the generator is wrong
    months = sorted({f"{p.start:%Y-%m}" for c in custs for p in _chain(c)})
    last = max(c.span[1] for c in custs)
    return Scenario(seed, text, tuple(lines), tuple(months), last + timedelta(hours=1))


def _parse(text: str) -> Catalog:
    catalog, problems = parse_catalog(text, "random.yaml")
    if catalog is None:
        raise AssertionError("generated catalog is invalid:\n" + "\n".join(map(str, problems)))
    return catalog


def _chain(c: Customer) -> list[P.Period]:
    return P.chain(c.anchor, c.span[0], c.span[1] - timedelta(microseconds=1))


def _instant(rng: random.Random, lo: datetime, hi: datetime) -> datetime:
    """Any second of ``[lo, hi)``: subject moves and credits, which need no whole day."""
    seconds = int((hi - lo).total_seconds())
    return lo + timedelta(seconds=rng.randrange(max(seconds, 1)))


# -- parties ------------------------------------------------------------------------


def _subjects(rng: random.Random, seed: int, custs: list[Customer]) -> list[Owned]:
    owned: list[Owned] = []
    for i, c in enumerate(custs):
        owned.append(Owned(f"s{seed}-{i}a", c.key, c.span[0] - timedelta(days=30)))
        if rng.random() < 0.5:
            owned.append(Owned(f"s{seed}-{i}b", c.key, _instant(rng, *c.span)))
    a, b = rng.sample(custs, 2)
    lo, hi = max(a.span[0], b.span[0]), min(a.span[1], b.span[1])
    moved = _instant(rng, lo + timedelta(days=1), hi - timedelta(days=1))
    owned.append(Owned(f"mv{seed}", a.key, a.span[0] - timedelta(days=30), moved))
    owned.append(Owned(f"mv{seed}", b.key, moved))
    return owned


def _midnight(rng: random.Random, lo: datetime, hi: datetime) -> datetime:
    """A 00:00 UTC in ``[lo, hi)`` (the first from ``lo`` when the range holds none)."""
    first = lo.replace(hour=0, minute=0, second=0, microsecond=0)
    if first < lo:
        first += timedelta(days=1)
    days = -((first - hi) // timedelta(days=1))  # midnights in [first, hi)
    return first + timedelta(days=rng.randrange(max(days, 1)))


def _cut(rng: random.Random, c: Customer, lo: datetime, hi: datetime) -> datetime:
    """A plan change: a 00:00 UTC in ``[lo, hi)`` (the validator refuses a subscription
    starting or ending inside a day). Half the time a day that splits its period in a
    ratio such as 1/3 (10 of 30 days), 1/6 (5 of 30) or 2/7 (8 of 28), whose decimal
    expansion never ends (proration must stay exact: 45 included units over 10 of 30
    days are 15, not 14.999999999; 5139 JPY over 5 of 30 days is 856.5, a tie), else
    any day: k of 29 or 31 days never ends either."""
    nice: list[datetime] = []
    for p in _chain(c):
        days = (p.end - p.start).days
        for n in (3, 6, 7, 14):
            if days % n == 0:
                nice += [p.start + timedelta(days=days * k // n) for k in range(1, n)]
    nice = [t for t in nice if lo <= t < hi]
    if nice and rng.random() < 0.5:
        return rng.choice(nice)
    return _midnight(rng, lo, hi)


def _subscriptions(rng: random.Random, c: Customer) -> None:
    lo, hi = c.span[0] + timedelta(days=1), c.span[1] - timedelta(days=1)
    before = c.span[0] - timedelta(days=60)  # spans start at 00:00 UTC
    cut = sorted(_cut(rng, c, lo, hi) for _ in range(2))
    scheme = rng.choice(("whole", "whole", "upgrade", "late_start", "ends", "pause"))
    spans: list[tuple[datetime, datetime | None]] = {
        "whole": [(before, None)],
        "upgrade": [(before, cut[0]), (cut[0], None)],
        "late_start": [(cut[0], None)],
        "ends": [(before, cut[0])],
        "pause": [(before, cut[0]), (cut[1], None)] if cut[0] < cut[1] else [(before, None)],
    }[scheme]
    for j, (s, e) in enumerate(spans):
        c.subs.append(
            {"customer": c.key, "plan": f"{c.key}-plan{j}", "effective_from": s, "effective_to": e}
        )


def _usage(
    rng: random.Random,
    seed: int,
    custs: list[Customer],
    owned: list[Owned],
    events: int,
    aligned: bool,
) -> Usage:
    usage = Usage(rng, seed, owned)
    for i, c in enumerate(custs):
        if aligned:  # usage in the first hour of each of its periods
            for p in _chain(c):
                usage.add(p.start + timedelta(minutes=1), f"s{seed}-{i}a")
        usage.spread(c.key, c.span[0], c.span[1], events // len(custs))
        for p in _chain(c):
            for edge in (p.start, p.end):
                if c.span[0] < edge < c.span[1]:
                    usage.around(c.key, edge)
        for sub in c.subs:
            for edge in (sub["effective_from"], sub["effective_to"]):
                if edge is not None and c.span[0] < edge < c.span[1]:
                    usage.around(c.key, edge)
    for o in owned:
        if o.end is not None:
            usage.around(o.customer, o.end)
            usage.around(
                next(x.customer for x in owned if x.subject == o.subject and x.start == o.end),
                o.end,
            )
        if o.start > min(c.span[0] for c in custs):
            usage.add(o.start - timedelta(hours=2), o.subject)  # before it is anyone's
    usage.add(custs[0].span[0] + timedelta(hours=5), f"nobody{seed}")
    for c in custs if not aligned else ():
        middle = _chain(c)[1:-1]
        if middle and rng.random() < 0.4:  # a period without usage between two with some
            quiet = rng.choice(middle)
            usage.silence(c.key, quiet.start, quiet.end)
    usage.latest_ties(3)
    usage.same_id_other_source()
    return usage


# -- prices -------------------------------------------------------------------------

Records = dict[str, list[tuple[Fraction, Fraction]]]
"""Per meter, (quantity over all groups, share of the period) of each segment with usage."""


def _records(catalog: Catalog, custs: list[Customer], lines: list[str]) -> dict[str, Records]:
    readings = screen(catalog, lines).readings
    out: dict[str, Records] = {}
    for c in custs:
        mine = [r for r in readings if r.customer == c.key]
        for p in _chain(c):
            for seg in segments(catalog, c.key, p):
                for meter, groups in usage_by_group(catalog, seg, mine).items():
                    total = sum(groups.values(), Fraction(0))
                    out.setdefault(seg.plan.key, {}).setdefault(meter, []).append(
                        (total, seg.share)
                    )
    return out


def _money(rng: random.Random, currency: str, lo: float, hi: float) -> Decimal:
    """A positive amount in the currency's minor unit, about ``lo``..``hi`` euros."""
    places = PLACES[currency]
    scale = float(SCALE[currency]) * 10**places
    units = rng.randint(max(1, int(lo * scale)), max(1, int(hi * scale)))
    return Decimal(units).scaleb(-places)


def _near(rng: random.Random, currency: str, amount: Fraction, lo: float, hi: float) -> Decimal:
    """About ``lo``..``hi`` times ``amount``; one time in five ``amount`` itself (a
    commitment or cap equal to what a period bills, when that is in the minor unit)."""
    places = PLACES[currency]
    if amount > 0 and (amount * 10**places).denominator == 1 and rng.random() < 0.2:
        return Decimal(amount.numerator * 10**places // amount.denominator).scaleb(-places)
    units = int(amount * 10**places * Fraction(rng.uniform(lo, hi)))
    return Decimal(max(units, 1)).scaleb(-places)


def _unit(rng: random.Random, currency: str) -> str:
    return _text(Decimal(rng.choice(UNIT_AMOUNTS)) * SCALE[currency])


def _text(value: Decimal | Fraction) -> str:
    if isinstance(value, Fraction):
        value = Decimal(value.numerator) / Decimal(value.denominator)
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _plan(rng: random.Random, c: Customer, records: Records) -> dict[str, Any]:
    card = [
        _price(rng, c.currency, meter, records.get(meter, []))
        for meter in rng.sample(sorted(GROUPS), rng.randint(3, 6))
    ]
    for key in rng.sample(("platform", "support"), rng.randint(0, 2)):
        card.append({"key": key, "model": "flat", "amount": str(_money(rng, c.currency, 5, 80))})
    plan: dict[str, Any] = {"key": "", "currency": c.currency, "rate_card": card}
    if rng.random() < 0.3:
        plan["discount_percent"] = rng.choice(DISCOUNTS)
    return plan


def _price(
    rng: random.Random, currency: str, meter: str, seen: list[tuple[Fraction, Fraction]]
) -> dict[str, Any]:
    model = rng.choice(MODELS)
    price: dict[str, Any] = {"key": meter, "meter": meter, "model": model}
    total, share = rng.choice(seen) if seen else (Fraction(rng.randint(5, 500)), Fraction(1))
    included = Fraction(0)
    if rng.random() < 0.3 and total >= 4:
        included = Fraction(rng.randint(1, int(total // 2)))
        price["included"] = _text(included)
    free = included if share == 1 else floor_to(included * share, 9)
    billable = total - free
    target = billable + rng.choice((-1, 0, 1))
    if model == "per_unit":
        price["unit_amount"] = _unit(rng, currency)
    elif model in ("graduated", "volume"):
        price["tiers"] = _tiers(rng, currency, target)
    elif model == "package":
        size = rng.choice((target, target, Fraction(rng.choice((1, 3, 10, 1000)))))
        price["package_size"] = _text(size if size > 0 else Fraction(1))
        price["amount"] = str(_money(rng, currency, 0.1, 20))
    else:
        price.update(_dimension(rng, currency, meter))
    return price


def _tiers(rng: random.Random, currency: str, target: Fraction) -> list[dict[str, str]]:
    bounds = {target} if target > 0 else set()
    for _ in range(rng.randint(0, 2)):
        bounds.add(Fraction(max(1, int(target * Fraction(rng.uniform(0.1, 3))))))
    tiers: list[dict[str, str]] = []
    for bound in sorted(bounds) + [None]:
        tier = {"unit_amount": _unit(rng, currency)}
        if bound is not None:
            tier["up_to"] = _text(bound)
        if rng.random() < 0.3:
            tier["flat_amount"] = str(_money(rng, currency, 1, 30))
        tiers.append(tier)
    return tiers


def _dimension(rng: random.Random, currency: str, meter: str) -> dict[str, Any]:
    names = list(GROUPS[meter])
    dims = sorted(rng.sample(names, rng.randint(1, len(names))), key=names.index)
    combos = [()]
    for d in dims:
        combos = [(*combo, v) for combo in combos for v in GROUPS[meter][d]]
    default = rng.random() < 0.6 or any(d in MAY_BE_MISSING for d in dims)
    listed = rng.sample(combos, rng.randint(1, len(combos))) if default else combos
    out: dict[str, Any] = {
        "prices": [
            {"when": dict(zip(dims, combo, strict=True)), "unit_amount": _unit(rng, currency)}
            for combo in listed
        ]
    }
    if default:
        out["default_unit_amount"] = _unit(rng, currency)
    return out


def _contract(rng: random.Random, c: Customer, records: Records) -> dict[str, Any]:
    contract: dict[str, Any] = {"reference": f"MSA-{rng.randint(100, 999)}"}
    if rng.random() < 0.5:
        meter = rng.choice(sorted(GROUPS))
        contract["prices"] = [_price(rng, c.currency, meter, records.get(meter, []))]
    if rng.random() < 0.4:
        contract["discount_percent"] = rng.choice(DISCOUNTS)
    return contract


# -- terms and credits around what the prices bill -------------------------------------


def _subtotals(
    catalog: Catalog, custs: list[Customer], lines: list[str]
) -> dict[str, list[Fraction]]:
    readings = screen(catalog, lines).readings
    out: dict[str, list[Fraction]] = {}
    for c in custs:
        found = next(x for x in catalog.customers if x.key == c.key)
        mine = [r for r in readings if r.customer == c.key]
        for p in _chain(c):
            bill = rate(catalog, found, p, mine, {})
            if bill is not None and bill.subtotal > 0:
                out.setdefault(c.key, []).append(bill.subtotal)
    return out


def _terms(
    rng: random.Random, c: Customer, plans: dict[str, dict[str, Any]], subtotals: list[Fraction]
) -> None:
    for sub in c.subs:
        plan = plans[sub["plan"]]
        if rng.random() < 0.25:
            plan["maximum_spend"] = str(_near(rng, c.currency, rng.choice(subtotals), 0.5, 1.5))
        contract = sub.get("contract")
        if contract is None:
            continue
        if rng.random() < 0.6:
            commitment = _near(rng, c.currency, rng.choice(subtotals), 0.3, 1.6)
            contract["minimum_commitment"] = str(commitment)
            cap = plan.get("maximum_spend")
            if cap is not None and Decimal(cap) < commitment:
                contract["maximum_spend"] = str(
                    commitment + _near(rng, c.currency, Fraction(commitment), 0, 0.5)
                )
        if rng.random() < 0.3:
            floor = Decimal(contract.get("minimum_commitment", "0"))
            cap = _near(rng, c.currency, rng.choice(subtotals), 0.5, 1.5)
            contract["maximum_spend"] = str(max(cap, floor))


def _grants(rng: random.Random, c: Customer, subtotals: list[Fraction]) -> None:
    chain = _chain(c)
    boundaries = [p.start for p in chain] + [chain[-1].end]
    for g in range(rng.randint(0, 3)):
        start = rng.choice(
            (c.span[0] - timedelta(days=10), rng.choice(boundaries), _instant(rng, *c.span))
        )
        grant: dict[str, Any] = {
            "key": f"{c.key}-g{g}",
            "amount": str(_near(rng, c.currency, rng.choice(subtotals) or Fraction(10), 0.1, 1.2)),
            "currency": c.currency,
            "effective_from": start,
        }
        later = [b for b in boundaries if b > start]
        if rng.random() < 0.6:
            grant["expires_at"] = (
                rng.choice(later)
                if later and rng.random() < 0.5
                else start + timedelta(days=rng.randint(3, 40), hours=rng.randint(0, 23))
            )
        if rng.random() < 0.8:
            grant["priority"] = rng.choice((1, 10, 10, 100))
        c.grants.append(grant)


# -- the document -------------------------------------------------------------------


def _yaml(
    rng: random.Random,
    custs: list[Customer],
    owned: list[Owned],
    plans: dict[str, dict[str, Any]],
    rounding: str,
) -> str:
    del rng  # the document is a pure function of what was drawn
    doc: dict[str, Any] = {
        "rounding": rounding,
        "customers": [],
        "subjects": [],
        "plans": [],
        "subscriptions": [],
    }
    for c in custs:
        customer: dict[str, Any] = {
            "key": c.key,
            "billing": {
                "currency": c.currency,
                "anchor_day": c.anchor,
                "rail": c.rail,
                "account": f"acct-{c.key}",
                "segment": c.segment,
                "region": "eu-west-1",
            },
        }
        if c.rail == "outbox":  # an e-invoicing rail: the buyer's details and its VAT
            customer["billing"] |= {
                "legal_name": f"{c.key} Ltd",
                "address": {
                    "street": "1 Main St",
                    "city": "Dublin",
                    "postal_zone": "D01",
                    "country": "IE",
                },
                "vat_id": "IE6388047V",
                "tax": {"category": "AE"},
            }
            doc["seller"] = {
                "legal_name": "Reference Seller Ltd",
                "address": {
                    "street": "2 Quay St",
                    "city": "Cork",
                    "postal_zone": "T12",
                    "country": "IE",
                },
                "vat_id": "IE3668997OH",
            }
        if c.grants:
            customer["credits"] = [_instants(g) for g in c.grants]
        doc["customers"].append(customer)
        for sub in c.subs:
            plan = plans.get(sub["plan"]) or {
                "currency": c.currency,
                "rate_card": [
                    {"key": m, "meter": m, "model": "per_unit", "unit_amount": "0"}
                    for m in sorted(GROUPS)
                ],
            }
            doc["plans"].append({**plan, "key": sub["plan"]})
            doc["subscriptions"].append(_instants({k: v for k, v in sub.items() if v is not None}))
    for o in owned:
        doc["subjects"].append(
            _instants(
                {
                    "customer": o.customer,
                    "subject": o.subject,
                    "effective_from": o.start,
                    "effective_to": o.end,
                }
            )
        )
    return METERS_YAML + yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=100)


def _instants(item: dict[str, Any]) -> dict[str, Any]:
    """Instants as ISO 8601 text with a Z; None values left out."""
    return {
        k: (f"{v:%Y-%m-%dT%H:%M:%SZ}" if isinstance(v, datetime) else v)
        for k, v in item.items()
        if v is not None
    }
