"""ClickHouse's UTC text (``2026-11-01 00:00:00.000000``) to aware datetimes."""

from __future__ import annotations

from datetime import UTC, datetime


def instant(text: str) -> datetime | None:
    if not text or text.startswith("1970"):
        return None
    return datetime.fromisoformat(text.replace(" ", "T")).replace(tzinfo=UTC)
