"""Deterministic synthetic usage for the demo, the tests and the benchmarks.

A :class:`WorkloadSpec` names a seed, a customer count, a line count and the
share of troublesome lines (re-sends, malformed or invalid events, late events,
unknown subjects); :func:`generate` or the memory-flat :func:`iter_events` turn
it into CloudEvents JSON lines as OpenMeter's ingest API takes them. The same
spec always gives byte-identical lines, so a failing test or a benchmark can be
replayed exactly. The customers are made up from the seed, or taken from a
billing catalog (:func:`catalog_population`) so every event bills to one of its
customers. Nothing here does I/O: :func:`connectors.files.write_jsonl` writes the
lines to a file.
"""

from .customers import customer_profiles
from .model import (
    DEFAULT_START,
    CustomerProfile,
    Defect,
    EventType,
    GeneratedEvent,
    Segment,
    Workload,
    WorkloadSpec,
    subject_owners,
)
from .population import Population, catalog_population
from .stream import generate, iter_events

__all__ = [
    "DEFAULT_START",
    "CustomerProfile",
    "Defect",
    "EventType",
    "GeneratedEvent",
    "Population",
    "Segment",
    "Workload",
    "WorkloadSpec",
    "catalog_population",
    "customer_profiles",
    "generate",
    "iter_events",
    "subject_owners",
]
