"""What ``POST /api/v1/events`` accepts: the body by content type, then each event.

Pure: the clock reading, the limits and the meters are passed in. Each event goes
through the same rules as ``railyard produce`` (``from_cloudevent``, ``check_event``),
so the API refuses exactly what the producer would. A request with any invalid event
is refused whole, none of its events published: a producer retries the batch once
fixed, and never has to work out which half went in (OpenMeter also refuses a batch
that does not decode as a whole).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from connectors.api.problems import InvalidEvent, Problem
from streams.domain.cloudevents import from_cloudevent
from streams.domain.meters import MeterIndex
from streams.domain.rejections import Reason, Rejection
from streams.domain.usage import UsageEvent
from streams.domain.validation import Limits, check_event

SINGLE = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
JSON = "application/json"
CONTENT_TYPES = (SINGLE, BATCH, JSON)


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:  # parsers disagree on which one wins: no one meaning
            raise _DuplicateKey(key)
        obj[key] = value
    return obj


def media_type(header: str | None) -> str:
    """``application/json; charset=utf-8`` -> ``application/json``."""
    return (header or "").split(";", 1)[0].strip().lower()


def parse_body(content_type: str | None, body: bytes) -> list[Any] | Problem:
    """The request's events as decoded JSON values (exact decimals), or why not."""
    kind = media_type(content_type)
    if kind not in CONTENT_TYPES:
        return Problem(
            415,
            "unsupported-media-type",
            f"Content-Type must be one of {', '.join(CONTENT_TYPES)}, not {kind or 'none'!r}",
        )
    try:
        decoded = json.loads(body, parse_float=Decimal, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        return Problem(400, "malformed-body", f"duplicate key {str(exc)!r} in a JSON object")
    except UnicodeDecodeError as exc:
        return Problem(400, "malformed-body", f"not UTF-8: {exc.reason} at byte {exc.start}")
    except ValueError as exc:
        return Problem(400, "malformed-body", f"not JSON: {exc}")
    if kind == SINGLE and not isinstance(decoded, dict):
        return Problem(400, "malformed-body", f"{SINGLE} is one event: a JSON object")
    if kind == BATCH and not isinstance(decoded, list):
        return Problem(400, "malformed-body", f"{BATCH} is a JSON array of events")
    events = decoded if isinstance(decoded, list) else [decoded]
    if not events:
        return Problem(400, "malformed-body", "no events in the request")
    return events


def forbidden_sources(objs: Sequence[Any], allowed: Collection[str] | None) -> list[InvalidEvent]:
    """The events whose ``source`` a key limited to ``allowed`` may not send (None: any)."""
    if allowed is None:
        return []
    out = []
    for index, obj in enumerate(objs):
        source = obj.get("source") if isinstance(obj, dict) else None
        if source not in allowed:
            event_id = obj.get("id") if isinstance(obj, dict) else None
            out.append(
                InvalidEvent(
                    index,
                    event_id if isinstance(event_id, str) else None,
                    "source_not_allowed",
                    f"source {source!r:.80} is not one this key may send",
                )
            )
    return out


@dataclass(frozen=True, slots=True)
class Screened:
    events: list[UsageEvent]
    invalid: list[InvalidEvent]


def screen(
    objs: Sequence[Any], now: datetime, limits: Limits, meters: MeterIndex | None
) -> Screened:
    """Every event judged, every problem kept (not just the first). An event without
    ``time`` gets ``now``, as OpenMeter gives it the time it was received."""
    events: list[UsageEvent] = []
    invalid: list[InvalidEvent] = []
    stamp = now.astimezone(UTC).isoformat()
    for index, obj in enumerate(objs):
        if not isinstance(obj, dict):
            invalid.append(
                InvalidEvent(index, None, str(Reason.MALFORMED_PAYLOAD), "not a JSON object")
            )
            continue
        if obj.get("time") is None:
            obj = {**obj, "time": stamp}
        decoded = from_cloudevent(obj)
        problem = (
            decoded if isinstance(decoded, Rejection) else check_event(decoded, now, limits, meters)
        )
        if problem is None:
            assert isinstance(decoded, UsageEvent)
            events.append(decoded)
        else:
            event_id = obj.get("id")
            invalid.append(
                InvalidEvent(
                    index,
                    event_id if isinstance(event_id, str) else None,
                    str(problem.reason),
                    problem.detail,
                )
            )
    return Screened(events, invalid)
