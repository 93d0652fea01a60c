"""CloudEvents JSON (structured mode, as OpenMeter's ingest API takes it) <-> UsageEvent.

``data`` is a flat object: JSON numbers are quantities (``values``), strings are
dimensions. Anything else in ``data`` cannot be metered and is rejected.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from streams.domain.rejections import Reason, Rejection
from streams.domain.usage import UsageEvent
from streams.domain.validation import check_quantity

REQUIRED = ("id", "source", "type", "subject", "time")


def _reject_constant(name: str) -> Decimal:
    return Decimal(name)  # NaN / Infinity: kept so the value check can name the field


SPECVERSION = "1.0"
"""The only CloudEvents version this contract implements."""


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object, refusing a key given twice: JSON parsers disagree on which one wins
    (Python keeps the last, others the first), so such an event has no one meaning."""
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise _DuplicateKey(key)
        obj[key] = value
    return obj


def parse_json(raw: str | bytes) -> dict[str, Any] | Rejection:
    """Parse one JSON document with exact decimals; a rejection if it is not one object
    with unique keys in valid UTF-8."""
    try:
        obj = json.loads(
            raw,
            parse_float=Decimal,
            parse_constant=_reject_constant,
            object_pairs_hook=_unique_keys,
        )
    except _DuplicateKey as exc:
        return Rejection(Reason.MALFORMED_PAYLOAD, f"duplicate key {str(exc)!r} in a JSON object")
    except UnicodeDecodeError as exc:
        return Rejection(Reason.MALFORMED_PAYLOAD, f"not UTF-8: {exc.reason} at byte {exc.start}")
    except ValueError as exc:
        return Rejection(Reason.MALFORMED_PAYLOAD, f"not JSON: {exc}")
    if not isinstance(obj, dict):
        return Rejection(Reason.MALFORMED_PAYLOAD, "a CloudEvent must be a JSON object")
    return obj


def parse_time(text: object) -> datetime | Rejection:
    if not isinstance(text, str):
        return Rejection(Reason.INVALID_FIELD, "time must be an RFC 3339 string")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return Rejection(Reason.INVALID_FIELD, f"time is not RFC 3339: {text!r:.60}")
    if parsed.tzinfo is None:
        return Rejection(Reason.INVALID_FIELD, f"time has no UTC offset: {text!r:.60}")
    return parsed.astimezone(UTC)


def from_cloudevent(obj: dict[str, Any]) -> UsageEvent | Rejection:
    """Map a CloudEvents JSON object onto the contract, or say why it cannot be."""
    event_id = obj.get("id") if isinstance(obj.get("id"), str) else None
    subject = obj.get("subject") if isinstance(obj.get("subject"), str) else None
    event_id, subject = event_id or None, subject or None

    def reject(reason: Reason, detail: str) -> Rejection:
        return Rejection(reason, detail, event_id, subject)

    for name in REQUIRED:
        if obj.get(name) in (None, ""):
            return reject(Reason.MISSING_FIELD, f"{name} is missing")
    for name in ("id", "source", "type", "subject"):
        if not isinstance(obj[name], str):
            return reject(Reason.INVALID_FIELD, f"{name} must be a string")
    specversion = obj.get("specversion", SPECVERSION)  # absent: 1.0, as before the field
    if specversion != SPECVERSION:
        return reject(
            Reason.INVALID_FIELD, f"specversion must be {SPECVERSION!r}, not {specversion!r:.20}"
        )
    time = parse_time(obj["time"])
    if isinstance(time, Rejection):
        return reject(time.reason, time.detail)
    data = obj.get("data", {})
    if not isinstance(data, dict):
        return reject(Reason.INVALID_FIELD, "data must be a JSON object")
    values: dict[str, Decimal] = {}
    dimensions: dict[str, str] = {}
    for name, value in data.items():
        if isinstance(value, str):
            dimensions[name] = value
            continue
        problem = check_quantity(name, value)
        if problem is not None:
            return reject(problem.reason, problem.detail)
        values[name] = value if isinstance(value, Decimal) else Decimal(str(value))
    dataschema = obj.get("dataschema")
    return UsageEvent(
        id=obj["id"],
        source=obj["source"],
        type=obj["type"],
        subject=obj["subject"],
        time=time,
        values=values,
        dimensions=dimensions,
        dataschema=dataschema if isinstance(dataschema, str) else None,
        specversion=SPECVERSION,
    )


def from_json(raw: str | bytes) -> UsageEvent | Rejection:
    obj = parse_json(raw)
    return obj if isinstance(obj, Rejection) else from_cloudevent(obj)


def to_cloudevent(event: UsageEvent) -> dict[str, Any]:
    """The structured-mode CloudEvents JSON object for an event (values as JSON numbers)."""
    data: dict[str, Any] = {k: _number(v) for k, v in event.values.items()}
    data.update(event.dimensions)
    out: dict[str, Any] = {
        "specversion": event.specversion,
        "id": event.id,
        "source": event.source,
        "type": event.type,
        "subject": event.subject,
        "time": event.time.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "data": data,
    }
    if event.dataschema:
        out["dataschema"] = event.dataschema
    return out


def _number(value: Decimal) -> int | float | Decimal:
    return int(value) if value == value.to_integral_value() else value


def to_json(event: UsageEvent) -> str:
    """One JSONL line for the event, quantities written with every digit.

    ``json`` only knows floats, so each quantity goes in as a unique placeholder
    string and its exact decimal text replaces the quoted placeholder afterwards.
    """
    obj = to_cloudevent(event)
    exact: dict[str, str] = {}
    for k, v in list(obj["data"].items()):
        if isinstance(v, Decimal | int) and not isinstance(v, bool):
            token = f"\x00dec{len(exact)}\x00"
            exact[json.dumps(token)] = format(Decimal(v).normalize(), "f")
            obj["data"][k] = token
    text = json.dumps(obj, separators=(",", ":"))
    for quoted, digits in exact.items():
        text = text.replace(quoted, digits, 1)
    return text
