"""Contract rules every usage event must satisfy before it can be billed.

Pure: the caller passes the clock reading, so the same event is judged the same
way in the producer, the stream and the tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, localcontext

from streams.domain.meters import MeterIndex
from streams.domain.rejections import Reason, Rejection
from streams.domain.usage import VALUE_PRECISION, VALUE_SCALE, UsageEvent

_MAX_INTEGER_DIGITS = VALUE_PRECISION - VALUE_SCALE
_QUANT = Decimal(1).scaleb(-VALUE_SCALE)


@dataclass(frozen=True, slots=True)
class Limits:
    """What counts as absurd; configured from :class:`streams.settings.Settings`."""

    max_event_bytes: int = 65_536
    max_age: timedelta = timedelta(days=40)
    max_skew: timedelta = timedelta(hours=1)
    max_properties: int = 64


def approx_size(event: UsageEvent) -> int:
    """Bytes the event occupies on the wire, give or take a few per field."""
    size = len(event.id) + len(event.source) + len(event.type) + len(event.subject) + 8
    for k in event.values:
        size += len(k) + 17
    for k, v in event.dimensions.items():
        size += len(k) + len(v) + 2
    return size


def check_quantity(name: str, value: object) -> Rejection | None:
    """A quantity must be a finite, non-negative number that fits Decimal(38, 9)."""
    if type(value) is Decimal:
        dec = value
    elif isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return Rejection(Reason.NON_NUMERIC_VALUE, f"data.{name} is not a number: {value!r:.60}")
    else:
        dec = value if isinstance(value, Decimal) else Decimal(str(value))
    if not dec.is_finite():
        return Rejection(Reason.NON_NUMERIC_VALUE, f"data.{name} is not finite: {value}")
    if dec < 0:
        return Rejection(Reason.NEGATIVE_VALUE, f"data.{name} is negative: {value}")
    if dec.adjusted() >= _MAX_INTEGER_DIGITS:
        return Rejection(Reason.INVALID_FIELD, f"data.{name} exceeds 10^{_MAX_INTEGER_DIGITS}")
    exponent = dec.as_tuple().exponent
    if isinstance(exponent, int) and exponent >= -VALUE_SCALE:
        return None  # the common case, decided without a decimal context
    with localcontext() as ctx:  # the default 28 digits cannot hold Decimal(38, 9)
        ctx.prec = VALUE_PRECISION + 2
        exact = dec == dec.quantize(_QUANT, rounding="ROUND_DOWN")
    if not exact:
        return Rejection(
            Reason.INVALID_FIELD, f"data.{name} has more than {VALUE_SCALE} decimal places"
        )
    return None


def check_event(
    event: UsageEvent,
    now: datetime,
    limits: Limits,
    meters: MeterIndex | None = None,
    *,
    size_known_ok: bool = False,
) -> Rejection | None:
    """The first rule the event breaks, or None when it may be billed.

    With ``meters``, the event must also feed at least one meter, and every property
    a meter reads as a number must be one.
    """
    rejection = _check(event, now, limits, size_known_ok)
    if rejection is None and meters is not None:
        rejection = _check_meters(event, meters)
    if rejection is None:
        return None
    return Rejection(rejection.reason, rejection.detail, event.id or None, event.subject or None)


def _check(
    event: UsageEvent, now: datetime, limits: Limits, size_known_ok: bool = False
) -> Rejection | None:
    if not (event.id and event.source and event.type and event.subject):
        name = next(n for n in ("id", "source", "type", "subject") if not getattr(event, n))
        return Rejection(Reason.MISSING_FIELD, f"{name} is empty")
    size = 0 if size_known_ok else approx_size(event)
    if size > limits.max_event_bytes:
        return Rejection(
            Reason.OVERSIZED_PAYLOAD, f"event is about {size} bytes, limit {limits.max_event_bytes}"
        )
    if len(event.values) + len(event.dimensions) > limits.max_properties:
        return Rejection(
            Reason.OVERSIZED_PAYLOAD, f"data has more than {limits.max_properties} properties"
        )
    if event.time.tzinfo is None:
        return Rejection(Reason.INVALID_FIELD, "time has no time zone")
    if event.time < now - limits.max_age or event.time > now + limits.max_skew:
        return Rejection(
            Reason.TIMESTAMP_OUT_OF_RANGE,
            f"time {event.time.isoformat()} is outside [now - {limits.max_age}, "
            f"now + {limits.max_skew}]",
        )
    for name, value in event.values.items():
        problem = check_quantity(name, value)
        if problem is not None:
            return problem
    overlap = event.values.keys() & event.dimensions.keys()
    if overlap:
        return Rejection(
            Reason.INVALID_FIELD, f"data.{sorted(overlap)[0]} is both value and dimension"
        )
    return None


def _check_meters(event: UsageEvent, meters: MeterIndex) -> Rejection | None:
    if not meters.knows(event.type):
        return Rejection(Reason.UNKNOWN_METER, f"no meter reads events of type {event.type!r}")
    for prop in sorted(meters.numeric[event.type]):
        if prop in event.values:
            continue
        if prop in event.dimensions:
            return Rejection(
                Reason.NON_NUMERIC_VALUE,
                f"data.{prop} is not a number: {event.dimensions[prop]!r:.60}",
            )
        return Rejection(Reason.MISSING_FIELD, f"data.{prop} is missing")
    return None
