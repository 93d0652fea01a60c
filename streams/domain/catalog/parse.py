"""Reading a catalog file: every problem at once, each at its file, line and field."""

from __future__ import annotations

from typing import Any

from streams.domain.meters import parse_meters

from . import fields as f
from .catalog import Catalog
from .model import DEFAULT_CREDIT_THRESHOLDS, Rounding
from .parse_parties import parse_assignments, parse_customers, parse_routing
from .parse_plans import parse_plans, parse_subscriptions
from .parse_prices import MeterRefs
from .parse_profile import check_seller, parse_seller
from .problems import Problem, Report, parse_path
from .yamltree import compose

SECTIONS = (
    "meters",
    "routing",
    "customers",
    "subjects",
    "plans",
    "subscriptions",
    "rounding",
    "credit_thresholds",
    "seller",
)
METER_FIELDS = (
    "key",
    "description",
    "event_type",
    "aggregation",
    "value_property",
    "group_by",
    "filters",
)


def parse_catalog(text: str, source: str = "catalog.yaml") -> tuple[Catalog | None, list[Problem]]:
    """The catalog ``text`` describes, or None and every problem, in line order.

    Any problem at all means no catalog: billing with half a catalog would invoice
    some customers and silently skip others.
    """
    tree, problems = compose(text, source)
    if tree is None:
        return None, problems
    r = Report(source, tree.lines, problems)
    doc = f.mapping(r, tree.root, (), SECTIONS) or {}
    meters = _meters(r, doc.get("meters"))
    routing = parse_routing(r, doc.get("routing"), ("routing",))
    customers, declared = parse_customers(r, doc.get("customers"), ("customers",), routing)
    seller = parse_seller(r, doc.get("seller"), ("seller",))
    check_seller(
        r,
        seller,
        [
            ((*declared[c.key], "billing"), c.billing.rail, c.billing.tax)
            for c in customers.values()
        ],
    )
    assignments = parse_assignments(r, doc.get("subjects"), ("subjects",), declared)
    plans = parse_plans(r, doc.get("plans"), ("plans",), meters)
    subscriptions = parse_subscriptions(
        r, doc.get("subscriptions"), ("subscriptions",), (customers, declared), plans, meters
    )
    rounding = f.choice(r, doc.get("rounding", Rounding.HALF_EVEN.value), ("rounding",), Rounding)
    thresholds = _thresholds(r, doc.get("credit_thresholds"))
    if r.problems:
        return None, sorted(r.problems, key=lambda p: p.line)
    catalog = Catalog(
        meters=tuple(meters.valid.values()),
        customers=tuple(customers.values()),
        assignments=assignments,
        plans=tuple(plans[0].values()),
        subscriptions=subscriptions,
        routing=routing,
        rounding=rounding or Rounding.HALF_EVEN,
        credit_thresholds=thresholds,
        seller=seller,
    )
    return catalog, []


def _thresholds(r: Report, raw: Any) -> tuple[int, ...]:
    """Whole percentages of a grant consumed that raise an alert: each within 1..100, once."""
    if raw is None:
        return DEFAULT_CREDIT_THRESHOLDS
    found: dict[int, Any] = {}
    for item_path, item in f.sequence(r, raw, ("credit_thresholds",)):
        percent = f.integer(r, item, item_path, 1, 100)
        if percent is None:
            continue
        if percent in found:
            r.add(item_path, f"duplicate threshold {item} (also {r.where(found[percent])})")
        else:
            found[percent] = item_path
    return tuple(sorted(found))


def _meters(r: Report, raw: Any) -> MeterRefs:
    """Meters through :func:`parse_meters`, its text locations turned into lines."""
    items = f.sequence(r, raw, ("meters",))
    declared: set[str] = set()
    for item_path, item in items:
        if isinstance(item, dict):  # parse_meters reports what is not
            f.mapping(r, item, item_path, METER_FIELDS)
            if isinstance(item.get("key"), str):
                declared.add(item["key"])
    meters, problems = parse_meters([item for _, item in items], "meters")
    for problem in problems:
        where, _, message = problem.partition(": ")
        r.add(parse_path(where), message)
    return MeterRefs({m.key: m for m in meters}, frozenset(declared))
