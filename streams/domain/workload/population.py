"""A workload's customers taken from a billing catalog, so every event bills to one.

The seed alone makes up customers and subjects that no catalog knows
(:func:`.customer_profiles`): fine for benchmarks with a catalog built from them,
but a workload meant for a running deployment must use the subjects of the catalog
in force, or every event is parked as unattributed. :func:`catalog_population`
takes the customers and subjects from the catalog and only their traffic mix
(products, models, volume share) from the seed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from random import Random

from streams.domain.catalog import Catalog, SubjectAssignment
from streams.domain.errors import ConfigError

from .customers import product_mix
from .model import CustomerProfile, EventType, Segment
from .usage import micros, owner_at
from .vocabulary import MODELS, VALUE_FIELDS

ZIPF_EXPONENT = 1.1
WORKSPACE_PREFIX = "ws_"
"""Subjects named ``ws_...`` are workspaces: they report seat counts, not requests."""


@dataclass(frozen=True)
class Population:
    """Who a workload's events come from.

    ``moves`` lists the subjects whose customer changes within the span, as
    ``(from, customer)`` pairs in order, ``from`` in microseconds since the epoch:
    such a subject keeps being used by the profile that owned it at the start, and
    each of its events is credited to the customer owning it at the event's time.
    """

    customers: tuple[CustomerProfile, ...]
    moves: Mapping[str, tuple[tuple[int, str], ...]] = field(default_factory=dict)

    def owner_at(self, subject: str, t_us: int) -> str | None:
        """The customer ``subject`` bills to at ``t_us``: None if no profile uses it."""
        changes = self.moves.get(subject)
        if changes is None:
            return next((c.name for c in self.customers if subject in c.subjects), None)
        return owner_at(changes, t_us)


def catalog_population(catalog: Catalog, seed: int, start: datetime, end: datetime) -> Population:
    """The catalog's customers with the subjects they bill through from ``start`` to ``end``.

    A subject is used only if it bills to some customer at every instant of the span,
    so no event is parked; it belongs to the profile of its customer at ``start``.
    Customers without such a subject are left out. Each profile's products are the
    event types the catalog meters with the generator's fields (``api.calls`` always,
    tokens, GPU minutes and seats drawn from ``seed``), its volume share follows a
    Zipf curve with enterprise customers first. Raises :class:`ConfigError` when the
    catalog meters no ``api.calls`` as the generator writes them (every request can
    fall back to one) or no customer owns a subject for the whole span.
    """
    usable = _usable_types(catalog)
    if EventType.API_CALLS not in usable:
        raise ConfigError(
            "the catalog meters no api.calls events with a `calls` value: the generator "
            "makes api.calls, ai.tokens, gpu.minutes and seats.active events as in "
            "deploy/catalog.example.yaml"
        )
    owners: dict[str, list[tuple[datetime, str]]] = {}
    by_subject: dict[str, list[SubjectAssignment]] = {}
    for a in catalog.assignments:
        by_subject.setdefault(a.subject, []).append(a)
    for subject, assignments in sorted(by_subject.items()):
        timeline = _owners(assignments, start, end)
        if timeline:
            owners[subject] = timeline
    subjects: dict[str, list[str]] = {}
    for subject, timeline in owners.items():
        subjects.setdefault(timeline[0][1], []).append(subject)
    ranked = sorted(
        (c for c in catalog.customers if c.key in subjects),
        key=lambda c: (c.billing.segment != "enterprise", c.key),
    )
    if not ranked:
        raise ConfigError(
            f"no customer of catalog {catalog.version} owns a subject for the whole span "
            f"{start:%Y-%m-%dT%H:%M:%SZ} to {end:%Y-%m-%dT%H:%M:%SZ}"
        )
    raw = [1.0 / rank**ZIPF_EXPONENT for rank in range(1, len(ranked) + 1)]
    rng = Random(f"railyard-workload:{seed}:catalog-customers")
    profiles = tuple(
        _profile(
            rng,
            c.key,
            Segment(str(c.billing.segment)),
            c.billing.currency,
            c.billing.region,
            subjects[c.key],
            usable,
            weight / sum(raw),
        )
        for c, weight in zip(ranked, raw, strict=True)
    )
    moves = {
        subject: tuple((micros(at), customer) for at, customer in timeline)
        for subject, timeline in sorted(owners.items())
        if len(timeline) > 1
    }
    return Population(profiles, moves)


def _usable_types(catalog: Catalog) -> set[EventType]:
    """Event types some meter reads and every meter of the type can read as generated."""
    out: set[EventType] = set()
    for kind in EventType:
        meters = [m for m in catalog.meters if m.event_type == kind.value]
        if meters and all(m.numeric_property in (None, VALUE_FIELDS[kind]) for m in meters):
            out.add(kind)
    return out


def _owners(
    assignments: list[SubjectAssignment], start: datetime, end: datetime
) -> list[tuple[datetime, str]] | None:
    """Who the subject bills to over ``[start, end)``, as ``(from, customer)`` in order;
    None when some instant of the span has no customer."""
    timeline: list[tuple[datetime, str]] = []
    at = start
    for a in sorted(assignments, key=lambda a: a.effective_from):
        if a.effective_to is not None and a.effective_to <= at:
            continue  # ended before the part of the span still to cover
        if a.effective_from > at:
            return None  # a gap: events then would be parked
        if not timeline or timeline[-1][1] != a.customer:
            timeline.append((at, a.customer))
        if a.effective_to is None or a.effective_to >= end:
            return timeline
        at = a.effective_to
    return None


def _profile(
    rng: Random,
    name: str,
    segment: Segment,
    currency: str,
    region: str,
    subjects: list[str],
    usable: set[EventType],
    weight: float,
) -> CustomerProfile:
    enterprise = segment is Segment.ENTERPRISE
    seats = EventType.SEATS_ACTIVE in usable
    spaces = tuple(s for s in subjects if seats and s.startswith(WORKSPACE_PREFIX))
    keys = tuple(s for s in subjects if s not in spaces) or spaces
    types = product_mix(rng, enterprise, bool(spaces), usable)
    return CustomerProfile(
        name=name,
        segment=segment,
        currency=currency,
        region=region,
        api_keys=keys,
        workspaces=spaces,
        event_types=types,
        models=tuple(rng.sample(MODELS, rng.randint(1, 3))),
        weight=weight,
    )
