"""Customers, the rules that route them to a rail, and the subjects they pay for."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import fields as f
from .model import (
    BillingProfile,
    CreditGrant,
    Customer,
    RoutingRule,
    Segment,
    SubjectAssignment,
)
from .parse_prices import money
from .parse_profile import PROFILE_FIELDS, parse_profile
from .periods import Span, check_order, overlapping
from .problems import Path, Report

CUSTOMER_FIELDS = ("key", "name", "billing", "credits")
GRANT_FIELDS = ("key", "amount", "currency", "effective_from", "expires_at", "priority")
MAX_PRIORITY = 1_000_000
BILLING_FIELDS = ("currency", "anchor_day", "rail", "account", "segment", "region", *PROFILE_FIELDS)
ROUTING_FIELDS = ("when", "rail")
ASSIGNMENT_FIELDS = ("subject", "subjects", "customer", "effective_from", "effective_to")


def parse_routing(r: Report, raw: Any, path: Path) -> tuple[RoutingRule, ...]:
    rules: list[RoutingRule] = []
    for rule_path, item in f.sequence(r, raw, path):
        m = f.mapping(r, item, rule_path, ROUTING_FIELDS)
        if m is None:
            continue
        before = len(r.problems)
        rail = f.text(r, m.get("rail"), (*rule_path, "rail"), pattern=f.RAIL)
        when = f.mapping(r, m.get("when") or {}, (*rule_path, "when"), ("segment", "region"))
        when = when or {}
        segment = None
        if "segment" in when:
            segment = f.choice(r, when["segment"], (*rule_path, "when", "segment"), Segment)
        region = f.text(r, when.get("region"), (*rule_path, "when", "region"), required=False)
        if rail is not None and len(r.problems) == before:
            rules.append(RoutingRule(rail, segment, region))
    return tuple(rules)


def parse_customers(
    r: Report, raw: Any, path: Path, routing: tuple[RoutingRule, ...]
) -> tuple[dict[str, Customer], dict[str, Path]]:
    """Valid customers by key, and where every customer key was declared.

    Later sections check references against the declared keys, so a customer with
    a bad currency is not also reported as unknown wherever it is named.
    """
    valid: dict[str, Customer] = {}
    declared: dict[str, Path] = {}
    grant_keys: dict[str, Path] = {}
    for item_path, item in f.sequence(r, raw, path):
        m = f.mapping(r, item, item_path, CUSTOMER_FIELDS)
        if m is None:
            continue
        before = len(r.problems)
        key = f.text(r, m.get("key"), (*item_path, "key"), pattern=f.KEY)
        if key is not None and key in declared:
            r.add(
                (*item_path, "key"), f"duplicate customer {key!r} (also {r.where(declared[key])})"
            )
        elif key is not None:
            declared[key] = item_path
        name = f.text(r, m.get("name"), (*item_path, "name"), required=False) or key
        billing = _billing(r, m.get("billing"), (*item_path, "billing"), routing)
        currency = billing.currency if billing else None
        credits = _credits(r, m.get("credits"), (*item_path, "credits"), currency, grant_keys)
        if key is not None and name is not None and billing is not None:
            if len(r.problems) == before:
                valid[key] = Customer(key, name, billing, credits)
    return valid, declared


def _credits(
    r: Report, raw: Any, path: Path, currency: str | None, keys: dict[str, Path]
) -> tuple[CreditGrant, ...]:
    """A customer's credit grants, in its billing currency; grant keys are catalog-wide."""
    grants: list[CreditGrant] = []
    for grant_path, item in f.sequence(r, raw, path):
        m = f.mapping(r, item, grant_path, GRANT_FIELDS)
        if m is None:
            continue
        before = len(r.problems)
        key = f.text(r, m.get("key"), (*grant_path, "key"), pattern=f.KEY)
        if key is not None and key in keys:
            r.add(
                (*grant_path, "key"), f"duplicate credit grant {key!r} (also {r.where(keys[key])})"
            )
        elif key is not None:
            keys[key] = grant_path
        code = f.currency(r, m.get("currency"), (*grant_path, "currency"))
        if code is not None and currency is not None and code != currency:
            r.add(
                (*grant_path, "currency"),
                f"{code} is not the customer's billing currency ({currency}); "
                "credit burns down invoices in that currency only",
            )
        amount = money(r, m.get("amount"), (*grant_path, "amount"), code)
        if amount is not None and amount <= 0:
            r.add((*grant_path, "amount"), f"must be greater than 0, got {m.get('amount')}")
        start = f.instant(r, m.get("effective_from"), (*grant_path, "effective_from"))
        expires = f.instant(r, m.get("expires_at"), (*grant_path, "expires_at"), required=False)
        if start is not None and expires is not None and expires <= start:
            r.add(
                (*grant_path, "expires_at"),
                f"must be after effective_from ({start.isoformat()}); a grant is usable "
                "from effective_from until expires_at, exclusive",
            )
        priority = f.integer(
            r, m.get("priority", "100"), (*grant_path, "priority"), 0, MAX_PRIORITY
        )
        if key and amount and code and start and priority is not None:
            if len(r.problems) == before:
                grants.append(CreditGrant(key, amount, code, start, expires, priority))
    return tuple(grants)


def _billing(
    r: Report, raw: Any, path: Path, routing: tuple[RoutingRule, ...]
) -> BillingProfile | None:
    m = f.mapping(r, raw, path, BILLING_FIELDS)
    if m is None:
        return None
    currency = f.currency(r, m.get("currency"), (*path, "currency"))
    # 29..31 are fine: a month shorter than the anchor starts its period on its last day
    anchor_day = f.integer(r, m.get("anchor_day", "1"), (*path, "anchor_day"), 1, 31)
    segment = f.choice(r, m.get("segment"), (*path, "segment"), Segment)
    region = f.text(r, m.get("region"), (*path, "region"))
    account = f.text(r, m.get("account"), (*path, "account"), required=False)
    rail = f.text(r, m.get("rail"), (*path, "rail"), required=False, pattern=f.RAIL)
    if m.get("rail") is None and segment is not None and region is not None:
        rail = next((rule.rail for rule in routing if rule.matches(segment, region)), None)
        if rail is None:
            r.add(
                (*path, "rail"),
                f"required: no routing rule matches segment {segment} in region {region}",
            )
    before = len(r.problems)
    profile = parse_profile(r, m, path, rail)
    if currency and anchor_day and segment and region and rail and len(r.problems) == before:
        return BillingProfile(currency, anchor_day, rail, segment, region, account, **profile)
    return None


def parse_assignments(
    r: Report, raw: Any, path: Path, customers: Mapping[str, Path]
) -> tuple[SubjectAssignment, ...]:
    """Every subject's assignments; one subject may not bill to two customers at once."""
    found: list[tuple[SubjectAssignment, Path]] = []
    for item_path, item in f.sequence(r, raw, path):
        m = f.mapping(r, item, item_path, ASSIGNMENT_FIELDS)
        if m is None:
            continue
        before = len(r.problems)
        customer = f.text(r, m.get("customer"), (*item_path, "customer"))
        if customer is not None and customer not in customers:
            r.add((*item_path, "customer"), f"unknown customer {customer!r}")
        start = f.instant(r, m.get("effective_from"), (*item_path, "effective_from"))
        end = f.instant(r, m.get("effective_to"), (*item_path, "effective_to"), required=False)
        check_order(r, start, end, item_path)
        subjects = _subjects(r, m, item_path)
        if customer is None or start is None or len(r.problems) > before:
            continue
        found += [(SubjectAssignment(s, customer, start, end), p) for s, p in subjects]
    owner = {p: a.customer for a, p in found}
    for subject, later, earlier in overlapping(
        (a.subject, Span(a.effective_from, a.effective_to, p)) for a, p in found
    ):
        r.add(
            later.path,
            f"subject {subject!r} overlaps its assignment to {owner[earlier.path]!r} at "
            f"{r.where(earlier.path)}; a subject bills to one customer at a time",
        )
    return tuple(a for a, _ in found)


def _subjects(r: Report, m: dict[str, Any], path: Path) -> list[tuple[str, Path]]:
    if ("subject" in m) == ("subjects" in m):
        r.add(path, "give either subject: <one> or subjects: [<several>]")
        return []
    if "subject" in m:
        one = f.text(r, m["subject"], (*path, "subject"))
        return [] if one is None else [(one, (*path, "subject"))]
    many = f.sequence(r, m["subjects"], (*path, "subjects"))
    if m["subjects"] in (None, []):
        r.add((*path, "subjects"), "must list at least one subject")
    out: list[tuple[str, Path]] = []
    seen: dict[str, Path] = {}
    for item_path, item in many:
        subject = f.text(r, item, item_path)
        if subject is not None and subject in seen:
            r.add(item_path, f"duplicate subject {subject!r} (also {r.where(seen[subject])})")
        elif subject is not None:
            seen[subject] = item_path
            out.append((subject, item_path))
    return out
