"""Usage for a random catalog: CloudEvents JSON lines with the edges billing must get right.

Deterministic from the ``random.Random`` it is given. Besides ordinary usage of
every meter it writes events exactly on period boundaries and a microsecond
before them, on the instant a subject moves and a plan changes, LATEST ties
(two readings at one instant), times with a non-UTC offset, a user id sent as
``7`` and ``7.00`` (one user), tokens without a ``direction``, the same id from
two sources (two events), re-sent duplicates (verbatim, and with other data:
the first wins), events no customer owns, and a few lines ingest rejects.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

METERS_YAML = """\
meters:
  - {key: tokens, event_type: ai.tokens, aggregation: SUM, value_property: tokens,
     group_by: [model, direction]}
  - {key: tokens_out, event_type: ai.tokens, aggregation: SUM, value_property: tokens,
     group_by: [model], filters: {direction: [output]}}
  - {key: requests, event_type: api.calls, aggregation: COUNT, group_by: [endpoint]}
  - {key: seats, event_type: seats.seen, aggregation: UNIQUE_COUNT, value_property: user,
     group_by: [workspace]}
  - {key: cpu, event_type: host.cpu, aggregation: AVG, value_property: cpu, group_by: [host]}
  - {key: peak_gb, event_type: storage.gb, aggregation: MAX, value_property: gb,
     group_by: [bucket]}
  - {key: floor_gb, event_type: storage.gb, aggregation: MIN, value_property: gb,
     group_by: [bucket]}
  - {key: level, event_type: tank.level, aggregation: LATEST, value_property: level,
     group_by: [tank]}
"""
GROUPS = {
    "tokens": {"model": ("m-large", "m-small", "m-tiny"), "direction": ("input", "output")},
    "tokens_out": {"model": ("m-large", "m-small", "m-tiny")},
    "requests": {"endpoint": ("/a", "/b", "/c")},
    "seats": {"workspace": ("ws-1", "ws-2", "3")},
    "cpu": {"host": ("h1", "h2", "h3")},
    "peak_gb": {"bucket": ("b1", "b2")},
    "floor_gb": {"bucket": ("b1", "b2")},
    "level": {"tank": ("t1", "t2")},
}
"""Each meter's group-by values as the events below send them."""
MAY_BE_MISSING = {"direction"}
"""Properties some events leave out (their group value is then "")."""
TYPES = ("ai.tokens", "api.calls", "seats.seen", "host.cpu", "storage.gb", "tank.level")
SOURCES = ("svc/alpha", "svc/beta")


@dataclass(frozen=True)
class Owned:
    """A subject as the generator assigned it: to ``customer`` over ``[start, end)``."""

    subject: str
    customer: str
    start: datetime
    end: datetime | None = None

    def covers(self, at: datetime) -> bool:
        return self.start <= at and (self.end is None or at < self.end)


@dataclass
class Draft:
    """One event before it is written: the line and what it is."""

    time: datetime
    source: str
    id: str
    type: str
    subject: str
    data: dict[str, str | Decimal | int]
    offset: timezone = UTC

    def line(self) -> str:
        parts = {
            "specversion": "1.0",
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "subject": self.subject,
            "time": stamp(self.time, self.offset),
        }
        data = ",".join(f"{json.dumps(k)}:{number_or_text(v)}" for k, v in self.data.items())
        return json.dumps(parts, separators=(",", ":"))[:-1] + ',"data":{' + data + "}}"


def stamp(at: datetime, offset: timezone = UTC) -> str:
    """RFC 3339 at ``offset`` (``Z`` for UTC), with microseconds only when there are some."""
    local = at.astimezone(offset)
    text = local.isoformat(timespec="microseconds" if local.microsecond else "seconds")
    return text.replace("+00:00", "Z") if offset is UTC else text


def number_or_text(value: str | Decimal | int) -> str:
    return json.dumps(value) if isinstance(value, str) else format(Decimal(value), "f")


class Usage:
    """Builds the events of one scenario."""

    def __init__(self, rng: random.Random, seed: int, owned: Sequence[Owned]) -> None:
        self.rng = rng
        self.seed = seed
        self.owned = list(owned)
        self.drafts: list[Draft] = []
        self.serial = 0

    def subject_of(self, customer: str, at: datetime) -> str | None:
        mine = [o.subject for o in self.owned if o.customer == customer and o.covers(at)]
        return self.rng.choice(mine) if mine else None

    def data(self, kind: str) -> dict[str, str | Decimal | int]:
        rng = self.rng
        if kind == "ai.tokens":
            tokens = rng.choice((rng.randint(1, 20_000), rng.randint(1, 500)))
            if rng.random() < 0.05:
                tokens = 10 ** rng.randint(6, 9)
            out: dict[str, str | Decimal | int] = {
                "tokens": tokens,
                "model": rng.choice(GROUPS["tokens"]["model"]),
            }
            if rng.random() > 0.05:
                out["direction"] = rng.choice(GROUPS["tokens"]["direction"])
            return out
        if kind == "api.calls":
            return {"endpoint": rng.choice(GROUPS["requests"]["endpoint"])}
        if kind == "seats.seen":
            user: str | Decimal | int = f"u{rng.randint(1, 12)}"
            if rng.random() < 0.08:
                user = rng.choice((7, Decimal("7.00"), Decimal("7.5"), Decimal("7.50")))
            workspace: str | Decimal | int = rng.choice(GROUPS["seats"]["workspace"])
            if workspace == "3":  # a number: its canonical text "3" is the group
                workspace = rng.choice((3, Decimal("3.0"), "3"))
            return {"user": user, "workspace": workspace}
        if kind == "host.cpu":
            return {
                "cpu": Decimal(rng.randint(0, 100_000)).scaleb(-3),
                "host": rng.choice(GROUPS["cpu"]["host"]),
            }
        if kind == "storage.gb":
            return {
                "gb": Decimal(rng.randint(0, 50_000)).scaleb(-2),
                "bucket": rng.choice(GROUPS["peak_gb"]["bucket"]),
            }
        digits = rng.choice((0, 2, 9))
        level = Decimal(rng.randint(0, 1000 * 10**digits)).scaleb(-digits)
        return {"level": level, "tank": rng.choice(GROUPS["level"]["tank"])}

    def add(self, at: datetime, subject: str, kind: str | None = None) -> Draft:
        self.serial += 1
        kind = kind or self.rng.choice(TYPES)
        offset = UTC
        if self.rng.random() < 0.1:
            offset = timezone(
                self.rng.choice((timedelta(hours=5, minutes=30), timedelta(hours=-7)))
            )
        source = self.rng.choice(SOURCES)
        draft = Draft(
            at, source, f"e{self.seed}-{self.serial}", kind, subject, self.data(kind), offset
        )
        self.drafts.append(draft)
        return draft

    def spread(self, customer: str, start: datetime, end: datetime, count: int) -> None:
        """``count`` events at random instants of ``[start, end)`` on the customer's subjects."""
        seconds = int((end - start).total_seconds())
        for _ in range(count):
            at = start + timedelta(seconds=self.rng.randrange(seconds))
            if self.rng.random() < 0.2:
                at += timedelta(microseconds=self.rng.randrange(1, 10**6))
            subject = self.subject_of(customer, at)
            if subject is not None:
                self.add(at, subject)

    def silence(self, customer: str, start: datetime, end: datetime) -> None:
        """Drop the customer's events in ``[start, end)``."""

        def theirs(d: Draft) -> bool:
            return any(
                o.subject == d.subject and o.customer == customer and o.covers(d.time)
                for o in self.owned
            )

        self.drafts = [d for d in self.drafts if not (start <= d.time < end and theirs(d))]

    def around(self, customer: str, instant: datetime) -> None:
        """Events at ``instant``, a microsecond before and a second after (each owned then)."""
        for at in (instant - timedelta(microseconds=1), instant, instant + timedelta(seconds=1)):
            subject = self.subject_of(customer, at)
            if subject is not None:
                self.add(at, subject)

    def latest_ties(self, count: int) -> None:
        levels = [d for d in self.drafts if d.type == "tank.level"]
        for d in self.rng.sample(levels, min(count, len(levels))):
            self.add(d.time, d.subject, "tank.level").data["tank"] = d.data["tank"]

    def same_id_other_source(self) -> None:
        if self.drafts:
            d = self.rng.choice(self.drafts)
            twin = self.add(d.time, d.subject, d.type)
            twin.id = d.id
            twin.source = SOURCES[1] if d.source == SOURCES[0] else SOURCES[0]

    def lines(self, duplicate_rate: float = 0.05) -> list[str]:
        """Every event in time order, duplicates after their originals, and a few rejects."""
        rng = self.rng
        ordered = sorted(self.drafts, key=lambda d: (d.time, d.source, d.id))
        out = [d.line() for d in ordered]
        for i in rng.sample(range(len(out)), int(len(out) * duplicate_rate)):
            out.insert(rng.randint(i + 1, len(out)), out[i])
        for d in rng.sample(ordered, max(1, len(ordered) // 100)):
            changed = Draft(d.time, d.source, d.id, d.type, d.subject, self.data(d.type), d.offset)
            out.insert(rng.randint(out.index(d.line()) + 1, len(out)), changed.line())
        for bad in self.rejects(ordered):
            out.insert(rng.randint(0, len(out)), bad)
        return out

    def rejects(self, ordered: Sequence[Draft]) -> list[str]:
        d = ordered[len(ordered) // 2]
        self.serial += 1
        fresh = f"bad{self.seed}-{self.serial}"
        variants: list[dict[str, str | Decimal | int]] = [
            {"tokens": -5, "model": "m-large"},
            {"tokens": Decimal("1.0000000001"), "model": "m-large"},
            {"model": "m-large"},
        ]
        out = ["{not json", "[1, 2]"]
        for i, data in enumerate(variants):
            out.append(Draft(d.time, d.source, f"{fresh}-{i}", "ai.tokens", d.subject, data).line())
        out.append(Draft(d.time, d.source, f"{fresh}-u", "mystery.type", d.subject, {}).line())
        out.append(
            Draft(
                d.time, d.source, f"{fresh}-c", "host.cpu", d.subject, {"cpu": "high", "host": "h1"}
            ).line()
        )
        return out
