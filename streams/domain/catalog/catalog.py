"""The catalog in force, and the questions billing asks of it at an instant."""

from __future__ import annotations

import hashlib
import json
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TypeVar

from streams.domain.meters import Meter, MeterIndex

from . import codec
from .model import (
    DEFAULT_CREDIT_THRESHOLDS,
    Customer,
    Plan,
    Rounding,
    RoutingRule,
    SubjectAssignment,
    Subscription,
)
from .prices import RateCard, merge_rate_cards
from .tax import Seller

T = TypeVar("T", SubjectAssignment, Subscription)
R = TypeVar("R")


@dataclass(frozen=True)
class Catalog:
    """Meters, customers, their subjects, plans and subscriptions, as one value.

    Collections are kept in key order, so two catalogs with the same content are
    equal and share a :attr:`version` however their files were laid out.
    ``routing`` keeps its written order: its first matching rule wins.
    ``rounding`` is how every invoice line is rounded to its currency's minor
    unit; ``credit_thresholds`` are the whole percentages of a credit grant
    consumed at which an alert goes out (ascending, each within 1..100).
    ``seller`` is who issues the invoices, as e-invoices name it (see
    :mod:`.tax`); required when a customer bills on an e-invoicing rail.

    Queries assume what :func:`parse_catalog` guarantees: a subject belongs to
    at most one customer, and a customer has at most one subscription, at a time.
    """

    meters: tuple[Meter, ...] = ()
    customers: tuple[Customer, ...] = ()
    assignments: tuple[SubjectAssignment, ...] = ()
    plans: tuple[Plan, ...] = ()
    subscriptions: tuple[Subscription, ...] = ()
    routing: tuple[RoutingRule, ...] = ()
    rounding: Rounding = Rounding.HALF_EVEN
    credit_thresholds: tuple[int, ...] = DEFAULT_CREDIT_THRESHOLDS
    seller: Seller | None = None
    _index: _Index = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Callers may pass lists; keep tuples, in key order.
        put = object.__setattr__
        put(self, "meters", tuple(sorted(self.meters, key=lambda m: m.key)))
        put(self, "customers", tuple(sorted(self.customers, key=lambda c: c.key)))
        put(self, "assignments", tuple(sorted(self.assignments, key=_span_order)))
        put(self, "plans", tuple(sorted(self.plans, key=lambda p: p.key)))
        put(self, "subscriptions", tuple(sorted(self.subscriptions, key=_span_order)))
        put(self, "routing", tuple(self.routing))
        put(self, "credit_thresholds", tuple(sorted(set(self.credit_thresholds))))
        put(self, "_index", _Index(self))

    def customer_for(self, subject: str, at: datetime) -> str | None:
        """The key of the customer ``subject`` bills to at ``at``, None if unassigned."""
        _aware(at)
        return _at(self._index.by_subject.get(subject), at, lambda a: a.customer)

    def subjects_of(self, customer: str, at: datetime) -> tuple[str, ...]:
        """The subjects billing to ``customer`` at ``at``, in order."""
        _aware(at)
        owned = self._index.by_customer.get(customer, ())
        return tuple(sorted(a.subject for a in owned if a.covers(at)))

    def subscription_for(self, customer: str, at: datetime) -> Subscription | None:
        _aware(at)
        return _at(self._index.subscriptions.get(customer), at, lambda s: s)

    def rate_card_for(self, customer: str, at: datetime) -> RateCard | None:
        """The plan's prices with the contract's in their place, None when unsubscribed."""
        sub = self.subscription_for(customer, at)
        plan = self._index.plans.get(sub.plan) if sub else None
        if sub is None or plan is None:
            return None
        return merge_rate_cards(plan.rate_card, sub.contract.prices if sub.contract else ())

    def customer(self, key: str) -> Customer | None:
        return self._index.customers.get(key)

    def plan(self, key: str) -> Plan | None:
        return self._index.plans.get(key)

    @cached_property
    def meter_index(self) -> MeterIndex:
        return MeterIndex.of(self.meters)

    @cached_property
    def version(self) -> str:
        """16 hex digits of the SHA-256 of :meth:`to_json`: equal content, equal version."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no spaces, amounts as strings), exact to the digit."""
        doc = codec.encode(self)
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> Catalog:
        """The catalog :meth:`to_json` wrote; ConfigError when ``text`` is not one."""
        return cls(**codec.decode(text))


class _Index:
    """Per-subject and per-customer lookups, sorted by start for a binary search."""

    def __init__(self, catalog: Catalog) -> None:
        self.by_subject = _timeline((a.subject, a) for a in catalog.assignments)
        self.subscriptions = _timeline((s.customer, s) for s in catalog.subscriptions)
        self.by_customer: dict[str, list[SubjectAssignment]] = {}
        for a in catalog.assignments:
            self.by_customer.setdefault(a.customer, []).append(a)
        self.customers = {c.key: c for c in catalog.customers}
        self.plans = {p.key: p for p in catalog.plans}


Timeline = tuple[list[datetime], list[T]]


def _timeline(items: Iterable[tuple[str, T]]) -> dict[str, Timeline[T]]:
    out: dict[str, Timeline[T]] = {}
    for key, item in items:  # already sorted by start within each key
        starts, entries = out.setdefault(key, ([], []))
        starts.append(item.effective_from)
        entries.append(item)
    return out


def _at(timeline: Timeline[T] | None, at: datetime, pick: Callable[[T], R]) -> R | None:
    if timeline is None:
        return None
    starts, entries = timeline
    i = bisect_right(starts, at) - 1
    return pick(entries[i]) if i >= 0 and entries[i].covers(at) else None


def _span_order(item: SubjectAssignment | Subscription) -> tuple[str, datetime]:
    return (
        item.subject if isinstance(item, SubjectAssignment) else item.customer,
        item.effective_from,
    )


def _aware(at: datetime) -> None:
    if at.tzinfo is None:
        raise ValueError(f"{at!r} is naive; catalog queries need a timezone-aware instant")
