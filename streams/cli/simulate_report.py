"""``railyard simulate``'s input and output: event lines from bytes, the report as exact JSON.

Pure apart from the caller's file reads: the same bytes, catalog, period and
``as_of`` give the same report, byte for byte, on any day.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from streams.domain.errors import ConfigError
from streams.domain.rating.screening import NotBilled, NotBilledReason, rfc3339
from streams.domain.rating.simulate import SimulationResult
from streams.wire.invoices import invoice_to_json


def event_lines(data: bytes, source: str) -> list[bytes]:
    """The lines of a JSON-lines file: split on ``\\n`` only, a trailing ``\\r`` dropped.

    U+2028, U+0085 and the other separators ``str.splitlines`` breaks on are data
    inside a JSON string, never line ends. ConfigError, naming ``source`` and the
    line, when the bytes are not UTF-8 or when no line holds anything.
    """
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(
            f"{source}:{line}: not valid UTF-8 (byte {column} of the line: {exc.reason})"
        ) from exc
    lines = [line.removesuffix(b"\r") for line in data.split(b"\n")]
    if not any(line.strip() for line in lines):
        raise ConfigError(f"{source} is empty: no line holds an event")
    return lines


def parse_instant(text: str) -> datetime:
    """An RFC 3339 instant with its offset, in UTC; ValueError otherwise."""
    parsed = datetime.fromisoformat(text.strip())
    if parsed.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset (add Z or +00:00)")
    return parsed.astimezone(UTC)


def counts(result: SimulationResult) -> dict[str, Any]:
    """How many lines were read, billed and not billed (by reason and dead-letter reason)."""
    reasons = Counter(n.reason for n in result.not_billed)
    return {
        "lines": result.accepted + result.duplicates + sum(result.rejected.values()),
        "accepted": result.accepted,
        "attributed": result.accepted - result.unattributed,
        "invoices": len(result.invoices),
        "not_billed": {r.value: reasons[r] for r in NotBilledReason},
        "dead_letters": dict(sorted(result.rejected.items())),
    }


def not_billed_json(n: NotBilled) -> dict[str, Any]:
    return {
        "line": n.line,
        "reason": n.reason.value,
        "dead_letter": None if n.dead_letter is None else n.dead_letter.value,
        "first_line": n.first_line,
        "id": n.id,
        "source": n.source,
        "detail": n.detail,
    }


def report_json(result: SimulationResult, as_of: datetime, period: str | None) -> str:
    """The whole run as one JSON object: nothing in it comes from the wall clock."""
    doc = {
        "period": period,
        "as_of": rfc3339(as_of),
        "counts": counts(result),
        "invoices": [invoice_to_json(i) for i in result.invoices],
        "not_billed": [not_billed_json(n) for n in result.not_billed],
    }
    return json.dumps(doc, indent=2)


def not_billed_summary(result: SimulationResult) -> str:
    """One line: how many lines were not billed, and why (empty when every line was)."""
    found = counts(result)
    by_reason = [f"{n} {reason}" for reason, n in found["not_billed"].items() if n]
    if not by_reason:
        return ""
    total = sum(found["not_billed"].values())
    return f"not billed: {total} of {found['lines']} lines ({', '.join(by_reason)})"
