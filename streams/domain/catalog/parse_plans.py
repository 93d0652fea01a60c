"""Plans and the subscriptions (with any contract) that put customers on them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import time
from decimal import Decimal
from typing import Any

from . import fields as f
from .model import Contract, Customer, Plan, Subscription
from .parse_prices import MeterRefs, money, parse_rate_card
from .periods import Span, check_order, overlapping
from .problems import Path, Report

TERM_FIELDS = ("discount_percent", "maximum_spend")
PLAN_FIELDS = ("key", "name", "currency", "rate_card", *TERM_FIELDS)
MIDNIGHT = time(0, 0)
SUBSCRIPTION_FIELDS = ("customer", "plan", "effective_from", "effective_to", "contract")
CONTRACT_FIELDS = ("reference", "minimum_commitment", "prices", *TERM_FIELDS)


def parse_plans(
    r: Report, raw: Any, path: Path, meters: MeterRefs
) -> tuple[dict[str, Plan], dict[str, Path]]:
    """Valid plans by key, and where every plan key was declared."""
    valid: dict[str, Plan] = {}
    declared: dict[str, Path] = {}
    for item_path, item in f.sequence(r, raw, path):
        m = f.mapping(r, item, item_path, PLAN_FIELDS)
        if m is None:
            continue
        before = len(r.problems)
        key = f.text(r, m.get("key"), (*item_path, "key"), pattern=f.KEY)
        if key is not None and key in declared:
            r.add((*item_path, "key"), f"duplicate plan {key!r} (also {r.where(declared[key])})")
        elif key is not None:
            declared[key] = item_path
        name = f.text(r, m.get("name"), (*item_path, "name"), required=False) or ""
        currency = f.currency(r, m.get("currency"), (*item_path, "currency"))
        if m.get("rate_card") is None:
            r.add((*item_path, "rate_card"), "required: a list of prices")
        prices = parse_rate_card(r, m.get("rate_card"), (*item_path, "rate_card"), meters, currency)
        discount, cap = _terms(r, m, item_path, currency)
        if key is not None and currency is not None and len(r.problems) == before:
            valid[key] = Plan(key, currency, prices, name, discount, cap)
    return valid, declared


def _terms(
    r: Report, m: dict[str, Any], path: Path, currency: str | None
) -> tuple[Decimal | None, Decimal | None]:
    """``discount_percent`` (0-100) and ``maximum_spend`` (> 0, in ``currency``)."""
    discount = f.decimal(r, m.get("discount_percent"), (*path, "discount_percent"), required=False)
    if discount is not None and discount > 100:
        r.add((*path, "discount_percent"), f"must be within 0..100, got {m['discount_percent']}")
        discount = None
    cap_path = (*path, "maximum_spend")
    cap = money(r, m.get("maximum_spend"), cap_path, currency, required=False)
    if cap is not None and cap <= 0:
        r.add(cap_path, f"must be greater than 0, got {m['maximum_spend']}")
        cap = None
    return discount, cap


def parse_subscriptions(
    r: Report,
    raw: Any,
    path: Path,
    refs: tuple[Mapping[str, Customer], Mapping[str, Path]],
    plans: tuple[Mapping[str, Plan], Mapping[str, Path]],
    meters: MeterRefs,
) -> tuple[Subscription, ...]:
    """Subscriptions in the customer's currency; a customer has one plan at a time.

    ``refs`` and ``plans`` are (valid, declared) pairs as the parsers above return them.
    """
    customers, declared_customers = refs
    valid_plans, declared_plans = plans
    found: list[tuple[Subscription, Path]] = []
    for item_path, item in f.sequence(r, raw, path):
        m = f.mapping(r, item, item_path, SUBSCRIPTION_FIELDS)
        if m is None:
            continue
        before = len(r.problems)
        key = f.text(r, m.get("customer"), (*item_path, "customer"))
        if key is not None and key not in declared_customers:
            r.add((*item_path, "customer"), f"unknown customer {key!r}")
        plan_key = f.text(r, m.get("plan"), (*item_path, "plan"))
        if plan_key is not None and plan_key not in declared_plans:
            known = ", ".join(sorted(declared_plans)) or "none"
            r.add((*item_path, "plan"), f"unknown plan {plan_key!r}; declared plans: {known}")
        customer = customers.get(key or "")
        plan = valid_plans.get(plan_key or "")
        if customer and plan and plan.currency != customer.billing.currency:
            r.add(
                (*item_path, "plan"),
                f"plan {plan.key!r} is priced in {plan.currency} but customer "
                f"{customer.key!r} is billed in {customer.billing.currency}",
            )
        start = f.instant(r, m.get("effective_from"), (*item_path, "effective_from"))
        end = f.instant(r, m.get("effective_to"), (*item_path, "effective_to"), required=False)
        for name, at in (("effective_from", start), ("effective_to", end)):
            if at is not None and at.timetz().replace(tzinfo=None) != MIDNIGHT:
                r.add(
                    (*item_path, name),
                    f"a plan starts and ends at 00:00 UTC, not {at:%H:%M:%S}: usage is billed "
                    "by the day, hour or minute it falls in, so a change inside a day could "
                    "bill that day's usage under the wrong plan (docs/rating.md, Segments)",
                )
        check_order(r, start, end, item_path)
        currency = plan.currency if plan else None
        contract_path = (*item_path, "contract")
        contract = _contract(r, m.get("contract"), contract_path, meters, currency)
        _check_commitment_under_cap(r, contract, plan, contract_path)
        if key and plan_key and start and len(r.problems) == before:
            found.append((Subscription(key, plan_key, start, end, contract), item_path))
    for customer_key, later, earlier in overlapping(
        (s.customer, Span(s.effective_from, s.effective_to, p)) for s, p in found
    ):
        r.add(
            later.path,
            f"customer {customer_key!r} is already subscribed for this time by "
            f"{r.where(earlier.path)}; end that subscription where this one starts",
        )
    return tuple(s for s, _ in found)


def _contract(
    r: Report, raw: Any, path: Path, meters: MeterRefs, currency: str | None
) -> Contract | None:
    if raw is None:
        return None
    m = f.mapping(r, raw, path, CONTRACT_FIELDS)
    if m is None:
        return None
    reference = f.text(r, m.get("reference"), (*path, "reference"), required=False)
    minimum = money(
        r, m.get("minimum_commitment"), (*path, "minimum_commitment"), currency, required=False
    )
    prices = parse_rate_card(r, m.get("prices"), (*path, "prices"), meters, currency)
    discount, cap = _terms(r, m, path, currency)
    return Contract(reference, minimum, prices, discount, cap)


def _check_commitment_under_cap(
    r: Report, contract: Contract | None, plan: Plan | None, path: Path
) -> None:
    """A period cannot both invoice at least the commitment and at most a lower cap."""
    if contract is None or contract.minimum_commitment is None:
        return
    cap = contract.maximum_spend or (plan.maximum_spend if plan else None)
    if cap is not None and contract.minimum_commitment > cap:
        r.add(
            (*path, "minimum_commitment"),
            f"{contract.minimum_commitment} is above the maximum spend of {cap}",
        )
