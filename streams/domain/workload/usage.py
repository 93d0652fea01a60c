"""Realistic usage events in OpenMeter's CloudEvents shape.

The hot path of the generator: every clean event passes through here, so the
code favours precomputed cumulative weights and cached time prefixes over
``random.choices`` and ``datetime`` arithmetic per event.
"""

from __future__ import annotations

import json
from bisect import bisect, bisect_right
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from math import exp
from random import Random
from typing import Any

from .customers import fresh_subject
from .model import CustomerProfile, EventType
from .vocabulary import (
    ENDPOINT_WEIGHTS,
    ENDPOINTS,
    GPU_TYPE_WEIGHTS,
    GPU_TYPES,
    MODELS,
    REGIONS,
    SOURCES,
    WORKSPACE_NAMES,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Token sizes: Pareto with minimum and tail index (exponent = -1/alpha); medians ~270 and ~110.
INPUT_TOKENS_MIN, INPUT_SHAPE = 150, -1 / 1.2
OUTPUT_TOKENS_MIN, OUTPUT_SHAPE = 60, -1 / 1.1
MAX_INPUT_TOKENS = 200_000
MAX_OUTPUT_TOKENS = 16_384
UNKNOWN_SUBJECTS = 5
# Relative request mix of the products a customer uses; seats are scheduled, not drawn.
TYPE_WEIGHTS = {EventType.API_CALLS: 0.35, EventType.AI_TOKENS: 0.5, EventType.GPU_MINUTES: 0.15}
MODEL_WEIGHTS = (0.6, 0.3, 0.1)

Event = dict[str, Any]
# A well-formed event, its JSON line and the customer owning its subject.
Rendered = tuple[Event, str, str | None]
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}
encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


def cumulative(weights: Iterable[float]) -> list[float]:
    """Cumulative shares ending at exactly 1.0, so ``bisect(cum, random())`` is in range."""
    cum = list(accumulate(weights))
    shares = [w / cum[-1] for w in cum]
    shares[-1] = 1.0
    return shares


def micros(moment: datetime) -> int:
    """Microseconds since the Unix epoch, exact (no float rounding)."""
    span = moment - EPOCH
    return (span.days * 86_400 + span.seconds) * 1_000_000 + span.microseconds


def owner_at(changes: tuple[tuple[int, str], ...], t_us: int) -> str:
    """The customer of the last ``(from_us, customer)`` change at or before ``t_us``."""
    index = bisect_right(changes, t_us, key=lambda change: change[0])
    return changes[max(index - 1, 0)][1]


class _Buyer:
    """Who sends a request and their traffic mix, precomputed once for fast draws."""

    __slots__ = ("name", "types", "type_cum", "models", "model_cum", "keys", "region")

    def __init__(
        self,
        name: str | None,
        types: tuple[EventType, ...],
        models: tuple[str, ...],
        model_weights: Iterable[float],
        keys: tuple[str, ...],
        region: str,
    ) -> None:
        self.name = name
        self.types = tuple(t for t in types if t in TYPE_WEIGHTS)
        self.type_cum = cumulative(TYPE_WEIGHTS[t] for t in self.types)
        self.models = models
        self.model_cum = cumulative(model_weights)
        self.keys = keys
        self.region = region

    @classmethod
    def of(cls, profile: CustomerProfile) -> _Buyer:
        return cls(
            profile.name,
            profile.event_types,
            profile.models,
            MODEL_WEIGHTS[: len(profile.models)],
            profile.api_keys,
            profile.region,
        )


class UsageFactory:
    """Draws usage events from one seeded RNG; same call sequence, same events.

    Each event comes with its JSON line, formatted directly: every string in a
    well-formed event is plain ASCII without quotes or escapes, so the f-string
    equals ``json.dumps`` with compact separators (a unit test holds this) at a
    fraction of the cost.
    """

    def __init__(
        self,
        rng: Random,
        customers: tuple[CustomerProfile, ...],
        moves: Mapping[str, tuple[tuple[int, str], ...]] | None = None,
    ) -> None:
        self.rng = rng
        # Subjects changing customer mid-workload: each event is credited to the one then.
        self.moves = dict(moves or {})
        self.buyers = [_Buyer.of(c) for c in customers]
        self.buyer_cum = cumulative(c.weight for c in customers)
        self.endpoint_cum = cumulative(ENDPOINT_WEIGHTS)
        self.gpu_cum = cumulative(GPU_TYPE_WEIGHTS)
        taken = {s for c in customers for s in c.subjects}
        unknown = tuple(fresh_subject(rng, "key", 64, taken) for _ in range(UNKNOWN_SUBJECTS))
        # Revoked or never-provisioned keys: they use any product, from anywhere.
        self.nobody = _Buyer(
            None, tuple(TYPE_WEIGHTS), MODELS, [1.0] * len(MODELS), unknown, REGIONS[0]
        )
        self._minute = -1
        self._prefix = ""

    def rfc3339(self, t_us: int) -> str:
        """``YYYY-MM-DDTHH:MM:SS.ffffffZ``; the minute prefix is cached across calls."""
        minute, rest = divmod(t_us, 60_000_000)
        if minute != self._minute:
            self._minute = minute
            self._prefix = (EPOCH + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:")
        second, us = divmod(rest, 1_000_000)
        return f"{self._prefix}{second:02d}.{us:06d}Z"

    def envelope(
        self,
        kind: str,
        source: str,
        subject: str,
        t_us: int,
        data: Event,
        data_json: str,
        owner: str | None,
    ) -> Rendered:
        """The CloudEvent and its line; ``data_json`` must be ``data`` already encoded."""
        # A UUIDv4 from the seeded RNG, equal to str(uuid.UUID(int=bits, version=4)).
        h = f"{self.rng.getrandbits(128):032x}"
        event_id = f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"
        # rfc3339 inlined: this runs once per line.
        minute, rest = divmod(t_us, 60_000_000)
        if minute != self._minute:
            self._minute = minute
            self._prefix = (EPOCH + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:")
        second, us = divmod(rest, 1_000_000)
        time = f"{self._prefix}{second:02d}.{us:06d}Z"
        line = (
            f'{{"specversion":"1.0","id":"{event_id}","source":"{source}","type":"{kind}",'
            f'"subject":"{subject}","time":"{time}","data":{data_json}}}'
        )
        return (
            {
                "specversion": "1.0",
                "id": event_id,
                "source": source,
                "type": kind,
                "subject": subject,
                "time": time,
                "data": data,
            },
            line,
            owner,
        )

    def request(self, t_us: int, pairs: bool, buyer: _Buyer | None = None) -> list[Rendered]:
        """One request, by default of a customer drawn by volume share.

        A token request yields two events, input then output, unless ``pairs`` is
        false, in which case the request is drawn as an API call instead.
        """
        rng = self.rng
        if buyer is None:
            buyer = self.buyers[bisect(self.buyer_cum, rng.random())]
        kind = buyer.types[bisect(buyer.type_cum, rng.random())]
        subject = buyer.keys[int(rng.random() * len(buyer.keys))]
        region = buyer.region if rng.random() < 0.8 else REGIONS[int(rng.random() * len(REGIONS))]
        owner = buyer.name
        if self.moves and subject in self.moves:
            owner = owner_at(self.moves[subject], t_us)
        if kind is EventType.AI_TOKENS and pairs:
            source = f"{SOURCES[kind]}/{region}"
            model = buyer.models[bisect(buyer.model_cum, rng.random())]
            # Pareto sizes (inverse CDF): most prompts are short, a few fill the context
            # window; answers are shorter and capped by the output limit.
            tokens_in = min(
                int(INPUT_TOKENS_MIN * (1.0 - rng.random()) ** INPUT_SHAPE), MAX_INPUT_TOKENS
            )
            tokens_out = min(
                int(OUTPUT_TOKENS_MIN * (1.0 - rng.random()) ** OUTPUT_SHAPE), MAX_OUTPUT_TOKENS
            )
            return [
                self.envelope(
                    "ai.tokens",
                    source,
                    subject,
                    t_us,
                    {"tokens": tokens_in, "model": model, "direction": "input"},
                    f'{{"tokens":{tokens_in},"model":"{model}","direction":"input"}}',
                    owner,
                ),
                self.envelope(
                    "ai.tokens",
                    source,
                    subject,
                    t_us,
                    {"tokens": tokens_out, "model": model, "direction": "output"},
                    f'{{"tokens":{tokens_out},"model":"{model}","direction":"output"}}',
                    owner,
                ),
            ]
        if kind is EventType.GPU_MINUTES:
            source = f"{SOURCES[kind]}/{region}"
            minutes = max(round(exp(rng.gauss(1.5, 1.2)), 3), 0.001)
            gpu = GPU_TYPES[bisect(self.gpu_cum, rng.random())]
            data: Event = {"minutes": minutes, "gpu_type": gpu, "region": region}
            data_json = f'{{"minutes":{minutes!r},"gpu_type":"{gpu}","region":"{region}"}}'
        else:
            kind = EventType.API_CALLS
            source = f"{SOURCES[kind]}/{region}"
            calls = 1 if rng.random() < 0.9 else 2 + int(rng.random() * 19)
            endpoint = ENDPOINTS[bisect(self.endpoint_cum, rng.random())]
            data = {"calls": calls, "endpoint": endpoint, "region": region}
            data_json = f'{{"calls":{calls},"endpoint":"{endpoint}","region":"{region}"}}'
        return [self.envelope(kind.value, source, subject, t_us, data, data_json, owner)]

    def stranger(self, t_us: int, pairs: bool) -> list[Rendered]:
        """A request from a subject no customer owns."""
        return self.request(t_us, pairs, self.nobody)

    def seats(self, profile: CustomerProfile, workspace: int, seats: int, t_us: int) -> Rendered:
        """A seat-count reading of one of ``profile``'s workspaces."""
        name = WORKSPACE_NAMES[workspace % len(WORKSPACE_NAMES)]
        subject = profile.workspaces[workspace]
        moved = self.moves.get(subject) if self.moves else None
        return self.envelope(
            "seats.active",
            f"{SOURCES['seats.active']}/{profile.region}",
            subject,
            t_us,
            {"seats": seats, "workspace": name},
            f'{{"seats":{seats},"workspace":"{name}"}}',
            profile.name if moved is None else owner_at(moved, t_us),
        )
