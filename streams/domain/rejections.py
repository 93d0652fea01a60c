"""Why a record was not accepted: the machine-readable reasons on every dead letter."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Reason(StrEnum):
    """Reason codes written to ``usage.dlq``; analysts group dead letters by these."""

    MALFORMED_PAYLOAD = "malformed_payload"
    """The bytes are neither Avro we can read nor CloudEvents JSON."""
    UNKNOWN_SCHEMA = "unknown_schema"
    """Avro framing names a writer schema this deployment does not know."""
    MISSING_FIELD = "missing_field"
    INVALID_FIELD = "invalid_field"
    NEGATIVE_VALUE = "negative_value"
    NON_NUMERIC_VALUE = "non_numeric_value"
    TIMESTAMP_OUT_OF_RANGE = "timestamp_out_of_range"
    OVERSIZED_PAYLOAD = "oversized_payload"
    UNKNOWN_METER = "unknown_meter"
    """No meter reads this event type, so it cannot be billed (replay it after adding one)."""
    UNREADABLE_RECORD = "unreadable_record"
    """A later stage could not read a record of its input topic (the ``stage`` column says
    which); it went on with the next one."""
    RATING_FAILED = "rating_failed"
    """The catalog in force cannot rate a customer's period (e.g. usage with no price);
    the period is rated again when the catalog changes."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record that goes to the dead-letter topic instead of being billed."""

    reason: Reason
    detail: str
    event_id: str | None = None
    subject: str | None = None

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"
