"""Lay out a workload line by line: which position is on time, late, re-sent or broken.

Each position's category is drawn by selection sampling, so every category gets
exactly its count, spread uniformly over the stream, while only a few counters
and a bounded sample of past events are held: a million lines cost no more
memory than a thousand.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable, Iterator
from random import Random

from .customers import customer_profiles
from .defects import corrupt
from .model import (
    CustomerProfile,
    Defect,
    GeneratedEvent,
    Segment,
    Workload,
    WorkloadSpec,
    span_micros,
)
from .population import Population
from .usage import Rendered, UsageFactory, micros

# Past originals a later replay may copy; bounded so memory stays flat.
RESERVOIR_SIZE = 512
# Share of a retry that is immediate (a client timing out) rather than a replay much later.
IMMEDIATE_RETRY_SHARE = 0.5
# Seat gauges report hourly, less often if that would exceed this share of the lines.
SEAT_INTERVAL_US = 3_600_000_000
SEAT_SHARE = 0.05
NEVER = 2**63
DEFECTS = tuple(Defect)


def generate(spec: WorkloadSpec, population: Population | None = None) -> Workload:
    """Generate the whole workload in memory, for tests and the demo.

    Every line is held with its parsed dict, about 1 KB per event, and the garbage
    collector's passes over them halve the rate; benchmarks use :func:`iter_events`.
    """
    customers = population.customers if population else customer_profiles(spec)
    return Workload(spec, customers, tuple(iter_events(spec, population)))


class _Lane:
    """A category's lines still to emit, and the token output a request still owes it."""

    __slots__ = ("left", "pending")

    def __init__(self, left: int) -> None:
        self.left = left
        self.pending: Rendered | None = None

    def take(self, make: Callable[[int, bool], list[Rendered]], t: int) -> Rendered:
        # A token request needs two lines; it is only started when the lane has two.
        self.left -= 1
        owed, self.pending = self.pending, None
        if owed is not None:
            return owed
        made = make(t, self.left > 0)
        if len(made) == 2:
            self.pending = made[1]
        return made[0]


class _SeatGauges:
    """Periodic seat counts per workspace, a slow random walk like real headcounts."""

    def __init__(
        self, rng: Random, spec: WorkloadSpec, customers: tuple[CustomerProfile, ...]
    ) -> None:
        self.rng = rng
        self.spaces = [(c, i) for c in customers for i in range(len(c.workspaces))]
        self.seats = [
            rng.randint(20, 400) if c.segment is Segment.ENTERPRISE else rng.randint(1, 15)
            for c, _ in self.spaces
        ]
        span = span_micros(spec.duration)
        budget = max(SEAT_SHARE * spec.events, 1.0)
        self.interval = max(SEAT_INTERVAL_US, int(span * len(self.spaces) / budget))
        start = micros(spec.start)
        self.due = [(start + int(rng.random() * self.interval), i) for i in range(len(self.spaces))]
        heapq.heapify(self.due)
        # Checked inline for every clean line, so kept as a plain attribute.
        self.next_due = self.due[0][0] if self.due else NEVER

    def reading(self) -> tuple[CustomerProfile, int, int]:
        """The next reading due, as (customer, workspace index, seats); call once due."""
        when, index = self.due[0]
        heapq.heapreplace(self.due, (when + self.interval, index))
        self.next_due = self.due[0][0]
        seats = self.seats[index]
        seats = max(1, seats + round(self.rng.gauss(0.0, max(1.0, seats * 0.02))))
        self.seats[index] = seats
        customer, workspace = self.spaces[index]
        return customer, workspace, seats


def iter_events(
    spec: WorkloadSpec, population: Population | None = None
) -> Iterator[GeneratedEvent]:
    """Yield the spec's ``events`` lines in emission order, holding O(1) memory.

    The customers are ``population``'s (``spec.customers`` is then ignored), by default
    made up from ``spec.seed``. Byte-identical to :func:`generate` for the same input.
    """
    return _Stream(spec, population).run()


class _Stream:
    """The generator's state: lane budgets, the seat schedule and past originals."""

    def __init__(self, spec: WorkloadSpec, population: Population | None = None) -> None:
        customers = population.customers if population else customer_profiles(spec)
        self.spec = spec
        self.rng = Random(f"railyard-workload:{spec.seed}:events")
        self.factory = UsageFactory(self.rng, customers, population.moves if population else None)
        self.gauges = _SeatGauges(self.rng, spec, customers)
        self.clean = _Lane(spec.clean)
        self.late = _Lane(spec.late)
        self.strangers = _Lane(spec.unknown_subjects)
        self.duplicates = spec.duplicates
        self.invalid = spec.invalid
        self.broken = 0
        self.recent: GeneratedEvent | None = None
        self.reservoir: list[GeneratedEvent] = []
        self.originals = 0

    def run(self) -> Iterator[GeneratedEvent]:
        # The hot loop: attributes are bound to locals, clean lines stay inline.
        spec, rng, factory, gauges = self.spec, self.rng, self.factory, self.gauges
        clean, late, strangers = self.clean, self.late, self.strangers
        request, stranger = factory.request, factory.stranger
        n = spec.events
        start = micros(spec.start)
        span = span_micros(spec.duration)
        step = span // n if n else 0
        late_by = span_micros(spec.late_by)
        first_late = spec.first_late_position
        keep_originals = spec.duplicates > 0
        for position in range(n):
            now = start + span * position // n
            remaining = n - position
            is_late = False
            if late.left and position >= first_late and int(rng.random() * remaining) < late.left:
                # Uniform between late_by behind the clock and the very start of the stream.
                t = start + int(rng.random() * (now - late_by - start + 1))
                event, line, customer = late.take(request, t)
                is_late = True
            else:
                # Selection sampling over the on-time positions left: exact counts.
                pick = int(rng.random() * (remaining - late.left))
                t = now + int(rng.random() * step)
                if pick < self.duplicates:
                    if self.recent is not None:
                        yield self._resend(self.recent)
                        continue
                    # Nothing to re-send yet: emit an original now and owe the re-send.
                    pick = self.duplicates + self.invalid + (strangers.left if clean.left else 0)
                if pick < self.duplicates + self.invalid:
                    yield self._broken(t)
                    continue
                if pick < self.duplicates + self.invalid + strangers.left:
                    event, line, customer = strangers.take(stranger, t)
                elif t >= gauges.next_due and clean.pending is None:
                    clean.left -= 1
                    event, line, customer = factory.seats(*gauges.reading(), t)
                else:
                    event, line, customer = clean.take(request, t)
            generated = GeneratedEvent(line, event, None, None, customer, is_late)
            yield generated
            if keep_originals:
                self._remember(generated)

    def _resend(self, recent: GeneratedEvent) -> GeneratedEvent:
        """Re-send the latest original (a client retry) or one from much earlier (a replay)."""
        rng = self.rng
        self.duplicates -= 1
        original = recent
        if rng.random() >= IMMEDIATE_RETRY_SHARE:
            original = self.reservoir[int(rng.random() * len(self.reservoir))]
        copy = json.loads(original.line)
        return GeneratedEvent(original.line, copy, None, copy["id"], original.customer, False)

    def _broken(self, t: int) -> GeneratedEvent:
        """A customer's event spoiled by the next defect in turn, so kinds stay balanced."""
        self.invalid -= 1
        defect = DEFECTS[self.broken % len(DEFECTS)]
        self.broken += 1
        made = self.factory.request(t, True)
        event, _, customer = made[int(self.rng.random() * len(made))]
        line, parsed = corrupt(self.factory, self.rng, event, defect)
        if parsed is None or "subject" not in parsed:
            customer = None
        return GeneratedEvent(line, parsed, defect, None, customer, False)

    def _remember(self, generated: GeneratedEvent) -> None:
        """Keep the latest original and a uniform sample of all of them (reservoir sampling)."""
        self.recent = generated
        self.originals += 1
        if len(self.reservoir) < RESERVOIR_SIZE:
            self.reservoir.append(generated)
        else:
            slot = int(self.rng.random() * self.originals)
            if slot < RESERVOIR_SIZE:
                self.reservoir[slot] = generated
