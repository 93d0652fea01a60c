"""RFC 9457 problem details, the error body of every API answer that is not 2xx.

OpenMeter answers errors as ``application/problem+json`` with ``type``, ``title``,
``status``, ``detail`` and ``instance``; its client reads those fields, so every
Railyard problem carries them, plus ``invalid_events`` when events were refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://railyard.dev/problems/"

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


@dataclass(frozen=True, slots=True)
class InvalidEvent:
    """One refused event of a request: where it was, which id it claimed, and why."""

    index: int
    id: str | None
    reason: str
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "id": self.id, "reason": self.reason, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class Problem:
    """A problem to answer with; ``kind`` names it (the last part of ``type``)."""

    status: int
    kind: str
    detail: str
    invalid_events: tuple[InvalidEvent, ...] = ()
    retry_after_s: int | None = None

    def to_json(self, instance: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": TYPE_BASE + self.kind,
            "title": TITLES.get(self.status, "Error"),
            "status": self.status,
            "detail": self.detail,
            "instance": instance,
        }
        if self.invalid_events:
            body["invalid_events"] = [e.to_json() for e in self.invalid_events]
        return body

    def headers(self) -> dict[str, str]:
        return {} if self.retry_after_s is None else {"Retry-After": str(self.retry_after_s)}


def invalid_events(problems: list[InvalidEvent], total: int) -> Problem:
    """400 for a request with invalid events: the whole request is refused (none of its
    events is published), as OpenMeter refuses a batch it cannot decode."""
    shown = ", ".join(f"#{p.index} ({p.reason})" for p in problems[:5])
    more = f" and {len(problems) - 5} more" if len(problems) > 5 else ""
    return Problem(
        400,
        "invalid-events",
        f"{len(problems)} of {total} events are invalid: {shown}{more}; none was ingested",
        tuple(problems),
    )


def forbidden_sources(problems: list[InvalidEvent], total: int) -> Problem:
    """403 for events whose source the key may not send; none is published."""
    return Problem(
        403,
        "source-not-allowed",
        f"{len(problems)} of {total} events have a source this API key may not send;"
        " none was ingested",
        tuple(problems),
    )
