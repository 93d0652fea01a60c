"""What the batch oracle bills of each line, and why it bills none of the others.

Each line is judged as the stream judges a one-event JSON message: ingest's
validation against its clock (here the explicit ``as_of`` instant), its
de-duplication on ``(source, id)``, then attribution at the event's time. Every
line that is not billed becomes a :class:`NotBilled` record naming the line and
the reason, so a batch run accounts for every line it was given.

Reading a line (its size, its JSON, the CloudEvent in it: :func:`parse_lines`) needs
neither the catalog nor ``as_of``; judging it does (meters known, attribution, the time
range). So a caller that judges the same lines twice, for two catalogs or for the
default ``as_of`` and then the screening, parses them once and passes the
:class:`ParsedLine` records to :func:`screen_parsed` and :func:`default_as_of_parsed`.

Pure: no clock, no I/O. The same lines, catalog and ``as_of`` give the same result.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from streams.domain.catalog import Catalog
from streams.domain.cloudevents import from_cloudevent, parse_json
from streams.domain.dedup import event_digest
from streams.domain.metering import Contribution, contributions
from streams.domain.rejections import Reason, Rejection
from streams.domain.usage import UsageEvent
from streams.domain.validation import Limits, check_event

from .periods import BillingPeriod, billing_period, period_of_month

MAX_MESSAGE_BYTES = 1 << 20
"""The stream's default ``RAILYARD_MAX_MESSAGE_BYTES``: each line is one message."""

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
"""The default ``as_of`` when no line holds a usable event (then it decides nothing)."""


class NotBilledReason(StrEnum):
    """Why a line was not billed."""

    REJECTED = "rejected"
    """Ingest would dead-letter it; ``dead_letter`` says why."""
    DUPLICATE = "duplicate"
    """Same source and id as an earlier accepted line (``first_line``)."""
    UNATTRIBUTED = "unattributed"
    """Valid, but no customer owned its subject at the event's time (the stream parks it)."""
    TOO_OLD = "too_old"
    """Older than ``as_of`` minus the maximum event age (dead-lettered as out of range)."""


@dataclass(frozen=True, slots=True)
class NotBilled:
    """One line the oracle did not bill."""

    line: int
    """1-based, counting every line given, blank ones included."""
    reason: NotBilledReason
    detail: str
    id: str | None = None
    source: str | None = None
    dead_letter: Reason | None = None
    """For rejected and too old lines: the reason ingest writes on the dead letter."""
    first_line: int | None = None
    """For duplicates: the line where the event was first accepted."""


@dataclass
class Screened:
    """Every line judged: the metered contributions, and the rest accounted for."""

    pairs: list[tuple[str, Contribution]] = field(default_factory=list)
    """(customer, contribution) of every attributed event."""
    rejected: Counter[str] = field(default_factory=Counter)
    """Lines ingest would dead-letter, by dead-letter reason (too old ones included)."""
    duplicates: int = 0
    unattributed: int = 0
    accepted: int = 0
    """Distinct valid events, attributed or not."""
    not_billed: list[NotBilled] = field(default_factory=list)
    """In line order."""


@dataclass(frozen=True, slots=True)
class ParsedLine:
    """One non-blank line as ingest reads a one-event JSON message, before any rule that
    depends on the catalog or a clock (those are :func:`screen_parsed`'s)."""

    number: int
    """1-based, counting every line given, blank ones included."""
    size: int
    """The line's length in bytes."""
    event: UsageEvent | None
    """The event the line holds; None when it holds none (then ``rejection`` says why)."""
    rejection: Rejection | None = None
    """Why ingest dead-letters the line before judging any event (too big, not JSON, not
    a CloudEvent); None when ``event`` is set."""
    source: str | None = None
    """The source the line names, when it names one."""


def parse_lines(
    lines: Iterable[bytes | str], max_message_bytes: int = MAX_MESSAGE_BYTES
) -> Iterator[ParsedLine]:
    """Each non-blank line read: its size, its JSON and the CloudEvent in it, lazily.

    Blank lines are skipped (but counted, so line numbers match the file's). What this
    gives depends only on the lines and ``max_message_bytes``, never on a catalog or a
    clock, so the result may be judged any number of times.
    """
    for number, line in enumerate(lines, start=1):
        payload = line.encode() if isinstance(line, str) else line
        if not payload.strip():
            continue
        yield _parsed(number, payload, max_message_bytes)


def screen(
    catalog: Catalog,
    lines: Iterable[bytes | str],
    as_of: datetime,
    limits: Limits,
    max_message_bytes: int = MAX_MESSAGE_BYTES,
) -> Screened:
    """Ingest, de-duplication, attribution and metering of every line, as the stream does them.

    Blank lines are skipped (but counted, so line numbers match the file's).
    """
    return screen_parsed(catalog, parse_lines(lines, max_message_bytes), as_of, limits)


def screen_parsed(
    catalog: Catalog, lines: Iterable[ParsedLine], as_of: datetime, limits: Limits
) -> Screened:
    """:func:`screen` of lines :func:`parse_lines` already read."""
    out = Screened()
    first_seen: dict[bytes, int] = {}
    meters = catalog.meter_index
    for parsed in lines:
        number = parsed.number
        event, rejection, source = _judged(parsed, as_of, limits, catalog)
        if rejection is not None:
            out.rejected[rejection.reason.value] += 1
            out.not_billed.append(_rejected(number, rejection, event, source, as_of, limits))
            continue
        assert event is not None  # _event rejects every line that holds no event
        digest = event_digest(event.source, event.id)
        first = first_seen.get(digest)
        if first is not None:
            out.duplicates += 1
            detail = f"same source and id as line {first}"
            out.not_billed.append(
                NotBilled(
                    number,
                    NotBilledReason.DUPLICATE,
                    detail,
                    event.id,
                    event.source,
                    first_line=first,
                )
            )
            continue
        first_seen[digest] = number
        out.accepted += 1
        customer = catalog.customer_for(event.subject, event.time)
        if customer is None:
            out.unattributed += 1
            detail = f"no customer owned subject {event.subject!r} at {rfc3339(event.time)}"
            out.not_billed.append(
                NotBilled(number, NotBilledReason.UNATTRIBUTED, detail, event.id, event.source)
            )
            continue
        for c in contributions(event, meters.by_type.get(event.type, ()), digest):
            out.pairs.append((customer, c))
    return out


def default_as_of(
    catalog: Catalog,
    lines: Iterable[bytes | str],
    period: BillingPeriod | str | None,
    grace: timedelta,
    limits: Limits,
    max_message_bytes: int = MAX_MESSAGE_BYTES,
) -> datetime:
    """The instant a run is judged at when none is given: a period's close, never a clock.

    Each candidate is a period end plus ``grace``. For a :class:`BillingPeriod`, its
    end. For a ``"YYYY-MM"`` month, the ends of the customers' periods starting that
    month. For none, the end of each event's period (its customer's; the event's own
    time when no customer owns it), for every event valid on its own time. Of the
    candidates that let ingest accept the most events, the latest wins: the latest
    close whenever it loses nothing, and never a close so late that the first
    periods' usage turns too old, nor one that a few events from a broken producer's
    clock (dated 2100, say) would carry past everyone else's usage. :data:`EPOCH`
    when there is no candidate (no line holds a valid event, and no period was asked).
    """
    return default_as_of_parsed(
        catalog, parse_lines(lines, max_message_bytes), period, grace, limits
    )


def default_as_of_parsed(
    catalog: Catalog,
    lines: Iterable[ParsedLine],
    period: BillingPeriod | str | None,
    grace: timedelta,
    limits: Limits,
) -> datetime:
    """:func:`default_as_of` of lines :func:`parse_lines` already read."""
    if isinstance(period, BillingPeriod):
        return period.end + grace
    times: list[datetime] = []
    candidates: set[datetime] = set()
    if isinstance(period, str):
        anchors = {c.billing.anchor_day for c in catalog.customers} or {1}
        candidates = {period_of_month(a, period).end + grace for a in anchors}
    for parsed in lines:
        event, rejection, _ = _judged(parsed, None, limits, catalog)
        if event is None or rejection is not None:
            continue
        times.append(event.time)
        if period is None:
            candidates.add(_close(catalog, event) + grace)
    times.sort()

    def accepted(as_of: datetime) -> int:
        newest = bisect_right(times, as_of + limits.max_skew)
        return newest - bisect_left(times, as_of - limits.max_age)

    return max(candidates, key=lambda c: (accepted(c), c), default=EPOCH)


def _close(catalog: Catalog, event: UsageEvent) -> datetime:
    """The end of the billing period ``event`` falls in: its customer's, or its own time."""
    key = catalog.customer_for(event.subject, event.time)
    found = catalog.customer(key) if key is not None else None
    if found is None:
        return event.time
    return billing_period(found.billing.anchor_day, event.time).end


def _parsed(number: int, payload: bytes, max_message_bytes: int) -> ParsedLine:
    """One line as ingest's ``screen`` reads a one-event JSON message, before judging it."""
    size = len(payload)
    if size > max_message_bytes:
        detail = f"message is {size} bytes, limit {max_message_bytes}"
        return ParsedLine(number, size, None, Rejection(Reason.OVERSIZED_PAYLOAD, detail))
    if payload[:1] != b"{":
        detail = "neither Avro framing nor a JSON object"
        return ParsedLine(number, size, None, Rejection(Reason.MALFORMED_PAYLOAD, detail))
    obj = parse_json(payload)
    if isinstance(obj, Rejection):
        return ParsedLine(number, size, None, obj)
    event = from_cloudevent(obj)
    if isinstance(event, Rejection):
        source = obj.get("source")
        return ParsedLine(
            number, size, None, event, source if isinstance(source, str) and source else None
        )
    return ParsedLine(number, size, event, None, event.source)


def _judged(
    parsed: ParsedLine, as_of: datetime | None, limits: Limits, catalog: Catalog
) -> tuple[UsageEvent | None, Rejection | None, str | None]:
    """One parsed line as ingest's ``screen`` judges a one-event JSON message.

    Returns the event when the line holds one, the rejection when ingest would
    dead-letter the line, and the event's source when the line names one.
    ``as_of`` None judges the event at its own time: every rule but the time range.
    """
    event = parsed.event
    if event is None:
        return None, parsed.rejection, parsed.source
    small = parsed.size <= limits.max_event_bytes
    at = event.time if as_of is None else as_of
    rejection = check_event(event, at, limits, catalog.meter_index, size_known_ok=small)
    return event, rejection, event.source


def _rejected(
    number: int,
    rejection: Rejection,
    event: UsageEvent | None,
    source: str | None,
    as_of: datetime,
    limits: Limits,
) -> NotBilled:
    reason, detail = NotBilledReason.REJECTED, rejection.detail
    if rejection.reason is Reason.TIMESTAMP_OUT_OF_RANGE and event is not None:
        # Ingest dead-letters both sides of the range alike; the report tells them apart.
        at = f"time {rfc3339(event.time)} is"
        if event.time < as_of - limits.max_age:
            reason = NotBilledReason.TOO_OLD
            detail = f"{at} more than {_span(limits.max_age)} before as_of {rfc3339(as_of)}"
        else:
            detail = f"{at} more than {_span(limits.max_skew)} after as_of {rfc3339(as_of)}"
    return NotBilled(number, reason, detail, rejection.event_id, source, rejection.reason)


def rfc3339(t: datetime) -> str:
    """``t`` in UTC as RFC 3339, with ``Z``."""
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _span(value: timedelta) -> str:
    """``40d``, ``1h``, ``90s``: as the RAILYARD_* settings write durations."""
    seconds = value.total_seconds()
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{int(seconds) // size}{unit}"
    return f"{seconds:g}s"
