"""Validity periods: half-open ``[start, end)``, ``end=None`` meaning open-ended."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from datetime import datetime
from typing import NamedTuple, TypeVar

from .problems import Path, Report

K = TypeVar("K", bound=Hashable)


class Span(NamedTuple):
    """One period of something (an assignment, a subscription), where it was written."""

    start: datetime
    end: datetime | None
    path: Path


def check_order(r: Report, start: datetime | None, end: datetime | None, path: Path) -> bool:
    """False (and a problem) when a period ends before it starts, or as it starts."""
    if start is not None and end is not None and end <= start:
        r.add(
            (*path, "effective_to"),
            f"must be after effective_from ({start.isoformat()}); periods are half-open",
        )
        return False
    return True


def overlapping(spans: Iterable[tuple[K, Span]]) -> list[tuple[K, Span, Span]]:
    """Each span that starts before an earlier one of the same key has ended.

    Returned as ``(key, later, earlier)``, ``earlier`` being the span that reaches
    furthest among those before. Touching periods (one ends where the next starts)
    do not overlap.
    """
    by_key: dict[K, list[Span]] = {}
    for key, span in spans:
        by_key.setdefault(key, []).append(span)
    found: list[tuple[K, Span, Span]] = []
    for key, group in by_key.items():
        group.sort(key=lambda s: s.start)  # stable: document order among equal starts
        reach = group[0]
        for span in group[1:]:
            if reach.end is None or span.start < reach.end:
                found.append((key, span, reach))
            if reach.end is not None and (span.end is None or span.end > reach.end):
                reach = span
    return found
