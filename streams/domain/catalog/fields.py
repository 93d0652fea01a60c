"""Readers for one field each: the value, or None and a problem at the field's line.

Scalars arrive as the text the user wrote (see :mod:`.yamltree`), so a number is
parsed exactly once, here, into the type the catalog needs. A reader never
raises: it reports and lets the caller carry on to find the next problem.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, TypeVar

from .currency import MINOR_UNITS
from .problems import Path, Report

KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}\Z")
"""Customer, plan and price keys: readable in a URL, a topic key or a log line."""
RAIL = re.compile(r"[a-z][a-z0-9_]{0,63}\Z")
"""Rail names become part of a topic name, so they stay lowercase identifiers."""
_INTEGER = re.compile(r"[+-]?[0-9]+\Z")
_SHAPES = {
    KEY: "letters, digits and _ . : - (at most 128), starting with a letter or digit",
    RAIL: "a lowercase identifier: a-z, 0-9 and _, starting with a letter",
}

E = TypeVar("E", bound=StrEnum)


def mapping(r: Report, raw: Any, path: Path, fields: Collection[str]) -> dict[str, Any] | None:
    """``raw`` as a mapping, each field not in ``fields`` reported as unknown (a typo)."""
    if not isinstance(raw, dict):
        r.add(path, f"must be a mapping with {', '.join(fields)}")
        return None
    for name in raw:
        if name not in fields:
            r.add((*path, name), f"unknown field; expected one of {', '.join(fields)}")
    return raw


def sequence(r: Report, raw: Any, path: Path) -> list[tuple[Path, Any]]:
    """Each item of a list with its path; nothing (and a problem) if not a list."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        r.add(path, "must be a list")
        return []
    return [((*path, i), item) for i, item in enumerate(raw)]


def text(
    r: Report,
    raw: Any,
    path: Path,
    *,
    required: bool = True,
    pattern: re.Pattern[str] | None = None,
) -> str | None:
    if raw is None or raw == "":
        if required:
            r.add(path, "required")
        return None
    if not isinstance(raw, str):
        r.add(path, "must be a single value, not a list or mapping")
        return None
    if pattern is not None and not pattern.match(raw):
        r.add(path, f"{raw!r} must be {_SHAPES.get(pattern, pattern.pattern)}")
        return None
    return raw


def decimal(
    r: Report, raw: Any, path: Path, *, required: bool = True, positive: bool = False
) -> Decimal | None:
    """An exact amount or quantity from its text; floats are refused, never rounded."""
    if raw is None:
        if required:
            r.add(path, "required")
        return None
    if isinstance(raw, float):
        r.add(path, f"{raw!r} is a float and may be inexact; give the amount as a string")
        return None
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        r.add(path, f"{raw!r} is not a decimal number")
        return None
    try:
        value = Decimal(raw.strip() if isinstance(raw, str) else raw)
    except InvalidOperation:
        r.add(path, f"{raw!r} is not a decimal number")
        return None
    if not value.is_finite():
        r.add(path, f"{raw!r} is not a finite number")
    elif positive and value <= 0:
        r.add(path, f"must be greater than 0, got {raw}")
    elif value < 0:
        r.add(path, f"must not be negative, got {raw}")
    else:
        return value
    return None


def integer(r: Report, raw: Any, path: Path, low: int, high: int) -> int | None:
    if raw is None:
        r.add(path, "required")
        return None
    if not (isinstance(raw, str) and _INTEGER.match(raw)):
        r.add(path, f"{raw!r} is not a whole number")
        return None
    value = int(raw)
    if not low <= value <= high:
        r.add(path, f"must be within {low}..{high}, got {value}")
        return None
    return value


def instant(r: Report, raw: Any, path: Path, *, required: bool = True) -> datetime | None:
    """A timezone-aware instant, normalized to UTC; a naive one is ambiguous, so refused."""
    if raw is None:
        if required:
            r.add(path, "required")
        return None
    try:
        value = datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        value = None
    if value is None:
        r.add(path, f"{raw!r} is not an ISO 8601 timestamp such as 2026-11-15T00:00:00Z")
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        r.add(path, f"{raw!r} has no UTC offset; add Z or one like +01:00")
        return None
    return value.astimezone(UTC)


def choice(r: Report, raw: Any, path: Path, kind: type[E]) -> E | None:
    if raw is None:
        r.add(path, "required")
        return None
    try:
        return kind(raw)
    except ValueError:
        r.add(path, f"{raw!r} is not one of {', '.join(k.value for k in kind)}")
        return None


def currency(r: Report, raw: Any, path: Path) -> str | None:
    """An ISO 4217 code we know the minor units of, so amounts can be checked against it."""
    code = text(r, raw, path)
    if code is not None and code not in MINOR_UNITS:
        r.add(path, f"unknown currency {code!r}; use an ISO 4217 code such as USD, EUR or JPY")
        return None
    return code
