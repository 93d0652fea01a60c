"""Reading a catalog file: every problem at once, each at its file, line and field."""

from __future__ import annotations

from pathlib import Path as FilePath
from typing import Any

from streams.domain.meters import parse_meters
from streams.errors import ConfigError

from . import fields as f
from .catalog import Catalog
from .parse_parties import parse_assignments, parse_customers, parse_routing
from .parse_plans import parse_plans, parse_subscriptions
from .parse_prices import MeterRefs
from .problems import Problem, Report, parse_path
from .yamltree import compose

SECTIONS = ("meters", "routing", "customers", "subjects", "plans", "subscriptions")
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
    assignments = parse_assignments(r, doc.get("subjects"), ("subjects",), declared)
    plans = parse_plans(r, doc.get("plans"), ("plans",), meters)
    subscriptions = parse_subscriptions(
        r, doc.get("subscriptions"), ("subscriptions",), (customers, declared), plans, meters
    )
    if r.problems:
        return None, sorted(r.problems, key=lambda p: p.line)
    catalog = Catalog(
        meters=tuple(meters.valid.values()),
        customers=tuple(customers.values()),
        assignments=assignments,
        plans=tuple(plans[0].values()),
        subscriptions=subscriptions,
        routing=routing,
    )
    return catalog, []


def load_catalog(path: str | FilePath) -> Catalog:
    """The catalog in the file at ``path``; ConfigError listing every problem otherwise."""
    try:
        text = FilePath(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read catalog {path}: {exc}") from exc
    catalog, problems = parse_catalog(text, str(path))
    if catalog is None:
        raise ConfigError(
            f"{path}: {len(problems)} problem(s):\n  " + "\n  ".join(map(str, problems))
        )
    return catalog


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
