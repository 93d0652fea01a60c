"""Deterministic customers with Zipf-skewed volume and their metered subjects."""

from __future__ import annotations

from collections.abc import Collection
from random import Random

from .model import CustomerProfile, EventType, Segment, WorkloadSpec
from .vocabulary import (
    DEFAULT_CURRENCY,
    MODELS,
    NAME_STEMS,
    NAME_SUFFIXES,
    REGION_CURRENCY,
    REGION_WEIGHTS,
    REGIONS,
)

ZIPF_EXPONENT = 1.1
MAX_API_KEYS = 4
MAX_WORKSPACES = 3


def customer_profiles(spec: WorkloadSpec) -> tuple[CustomerProfile, ...]:
    """The spec's customers, largest first.

    They depend only on ``seed`` and ``customers``, so a catalog built from them
    matches every workload generated with that seed, whatever its size or rates.
    """
    rng = Random(f"railyard-workload:{spec.seed}:customers")
    names = _names(rng, spec.customers)
    raw = [1.0 / rank**ZIPF_EXPONENT for rank in range(1, spec.customers + 1)]
    total = sum(raw)
    taken: set[str] = set()
    return tuple(
        _profile(rng, name, weight / total, rank, taken)
        for rank, (name, weight) in enumerate(zip(names, raw, strict=True))
    )


def fresh_subject(rng: Random, prefix: str, bits: int, taken: set[str]) -> str:
    """A random subject id not in ``taken``, which it joins; ids never collide."""
    while True:
        subject = f"{prefix}_{rng.getrandbits(bits):0{bits // 4}x}"
        if subject not in taken:
            taken.add(subject)
            return subject


def _names(rng: Random, count: int) -> list[str]:
    pool = [f"{stem}-{suffix}" for stem in NAME_STEMS for suffix in NAME_SUFFIXES]
    rng.shuffle(pool)
    # Past the pool, numbered names keep every customer distinct.
    return [
        pool[i % len(pool)] + ("" if i < len(pool) else f"-{i // len(pool) + 1}")
        for i in range(count)
    ]


def _profile(rng: Random, name: str, weight: float, rank: int, taken: set[str]) -> CustomerProfile:
    # Big spenders are mostly on contracts; the long tail pays by card.
    enterprise = rng.random() < (0.8 if rank < 3 else 0.25)
    segment = Segment.ENTERPRISE if enterprise else Segment.SELF_SERVICE
    region = rng.choices(REGIONS, REGION_WEIGHTS)[0]
    keys = rng.randint(2, MAX_API_KEYS) if enterprise else rng.randint(1, 2)
    spaces = rng.randint(1, MAX_WORKSPACES) if enterprise else int(rng.random() < 0.3)
    types = product_mix(rng, enterprise, bool(spaces))
    return CustomerProfile(
        name=name,
        segment=segment,
        currency=REGION_CURRENCY.get(region, DEFAULT_CURRENCY),
        region=region,
        api_keys=tuple(fresh_subject(rng, "key", 64, taken) for _ in range(keys)),
        workspaces=tuple(fresh_subject(rng, "ws", 48, taken) for _ in range(spaces)),
        event_types=types,
        models=tuple(rng.sample(MODELS, rng.randint(1, 3))),
        weight=weight,
    )


def product_mix(
    rng: Random,
    enterprise: bool,
    workspaces: bool,
    usable: Collection[EventType] = tuple(EventType),
) -> tuple[EventType, ...]:
    """What a customer uses: everyone calls the API; tokens, GPUs and seats (with a workspace)
    are extra products, limited to the ``usable`` ones (those a catalog meters)."""
    types = [EventType.API_CALLS]
    if rng.random() < 0.85 and EventType.AI_TOKENS in usable:
        types.append(EventType.AI_TOKENS)
    if rng.random() < (0.6 if enterprise else 0.2) and EventType.GPU_MINUTES in usable:
        types.append(EventType.GPU_MINUTES)
    if workspaces:
        types.append(EventType.SEATS_ACTIVE)
    return tuple(types)
