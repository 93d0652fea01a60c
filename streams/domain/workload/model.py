"""The types a synthetic workload is described and delivered in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple

from streams.domain.errors import ConfigError

DEFAULT_START = datetime(2026, 11, 1, tzinfo=UTC)

RATE_FIELDS = ("duplicate_rate", "invalid_rate", "late_rate", "unknown_subject_rate")


class EventType(StrEnum):
    """The CloudEvents ``type`` of each usage meter the generator feeds."""

    AI_TOKENS = "ai.tokens"
    GPU_MINUTES = "gpu.minutes"
    API_CALLS = "api.calls"
    SEATS_ACTIVE = "seats.active"


class Defect(StrEnum):
    """Ways a producer gets an event wrong; ingest must dead-letter each one with a reason."""

    NEGATIVE_VALUE = "negative_value"
    NON_NUMERIC_VALUE = "non_numeric_value"
    MISSING_FIELD = "missing_field"
    ABSURD_TIME = "absurd_time"
    OVERSIZED = "oversized"
    MALFORMED_JSON = "malformed_json"


class Segment(StrEnum):
    """How a customer buys: card on file and list prices, or a negotiated contract."""

    SELF_SERVICE = "self_service"
    ENTERPRISE = "enterprise"


@dataclass(frozen=True)
class WorkloadSpec:
    """What to generate; the same spec always yields byte-identical JSONL.

    ``events`` counts every line emitted, duplicates and invalid lines included.
    Each ``*_rate`` is the fraction of those lines in one category; the categories
    are exclusive and their counts are ``round(events * rate)`` exactly, so the
    rates may add up to at most 1. Late events carry an event time at least
    ``late_by`` before the stream clock at their position, which is
    ``start + duration * position / events``.
    """

    seed: int = 7
    customers: int = 20
    events: int = 10_000
    start: datetime = DEFAULT_START
    duration: timedelta = timedelta(days=1)
    duplicate_rate: float = 0.0
    invalid_rate: float = 0.0
    late_rate: float = 0.0
    unknown_subject_rate: float = 0.0
    late_by: timedelta = timedelta(hours=1)

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ConfigError("invalid WorkloadSpec: " + "; ".join(problems))

    def problems(self) -> list[str]:
        """Every reason this spec cannot be generated, empty when it can."""
        found: list[str] = []
        if self.customers < 1:
            found.append(f"customers must be >= 1, got {self.customers}")
        if self.events < 0:
            found.append(f"events must be >= 0, got {self.events}")
        if self.start.tzinfo is None or self.start.utcoffset() != timedelta(0):
            found.append(f"start must be timezone-aware UTC, got {self.start!r}")
        if self.duration <= timedelta(0):
            found.append(f"duration must be positive, got {self.duration}")
        for name in RATE_FIELDS:
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                found.append(f"{name} must be within [0, 1], got {rate}")
        if found:
            return found
        if sum(self.counts().values()) > self.events:
            found.append("rates add up to more than every event")
        if self.duplicates and self.clean + self.unknown_subjects == 0:
            found.append("duplicates need at least one clean or unknown-subject original")
        if self.late:
            if not timedelta(0) < self.late_by < self.duration:
                found.append(f"late_by must be within (0, duration), got {self.late_by}")
            elif self.late > self.events - self.first_late_position:
                found.append(
                    f"only {self.events - self.first_late_position} positions are at least "
                    f"late_by={self.late_by} into the stream, {self.late} late events asked"
                )
        return found

    @property
    def duplicates(self) -> int:
        return round(self.events * self.duplicate_rate)

    @property
    def invalid(self) -> int:
        return round(self.events * self.invalid_rate)

    @property
    def late(self) -> int:
        return round(self.events * self.late_rate)

    @property
    def unknown_subjects(self) -> int:
        return round(self.events * self.unknown_subject_rate)

    @property
    def clean(self) -> int:
        """On-time, well-formed events of known customers: every line not counted elsewhere."""
        return self.events - sum(self.counts().values())

    def counts(self) -> dict[str, int]:
        """Exact line counts of the special categories, keyed like the rate fields."""
        return {
            "duplicate_rate": self.duplicates,
            "invalid_rate": self.invalid,
            "late_rate": self.late,
            "unknown_subject_rate": self.unknown_subjects,
        }

    @property
    def first_late_position(self) -> int:
        """The first position whose stream clock is ``late_by`` past ``start``."""
        return -(-span_micros(self.late_by) * self.events // span_micros(self.duration))


def span_micros(span: timedelta) -> int:
    """Whole microseconds in ``span``, exact where float seconds would round."""
    return (span.days * 86_400 + span.seconds) * 1_000_000 + span.microseconds


@dataclass(frozen=True)
class CustomerProfile:
    """A paying customer, its metered subjects and how it uses the product.

    ``weight`` is its share of on-time traffic; shares follow a Zipf-like curve so
    the first few customers dominate, as they do in real API businesses.
    """

    name: str
    segment: Segment
    currency: str
    region: str
    api_keys: tuple[str, ...]
    workspaces: tuple[str, ...]
    event_types: tuple[EventType, ...]
    models: tuple[str, ...]
    weight: float

    @property
    def subjects(self) -> tuple[str, ...]:
        """Every subject that bills to this customer: API keys, then workspaces."""
        return self.api_keys + self.workspaces


class GeneratedEvent(NamedTuple):
    """One emitted JSONL line and what the generator knows about it.

    ``customer`` is the customer owning the line's subject, None when the subject
    is unknown, missing or unreadable. ``late`` marks lines deliberately emitted
    out of order; re-sends are marked by ``duplicate_of`` instead.

    An immutable NamedTuple rather than a frozen dataclass: benchmarks build a
    million of these, and a frozen dataclass's ``__init__`` costs four times as much.
    """

    line: str
    event: dict[str, Any] | None
    defect: Defect | None = None
    duplicate_of: str | None = None
    customer: str | None = None
    late: bool = False

    @property
    def valid(self) -> bool:
        """True for every line without a defect: late, re-sent and unknown-subject ones too."""
        return self.defect is None


@dataclass(frozen=True)
class Workload:
    """A generated workload: the customers and every line in emission order."""

    spec: WorkloadSpec
    customers: tuple[CustomerProfile, ...]
    events: tuple[GeneratedEvent, ...]
    subject_owners: Mapping[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "subject_owners", subject_owners(self.customers))


def subject_owners(customers: tuple[CustomerProfile, ...]) -> dict[str, str]:
    """Map each subject to the name of the customer it bills to."""
    return {subject: c.name for c in customers for subject in c.subjects}
