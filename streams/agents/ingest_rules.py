"""The ingest rules applied to one message of the ``usage`` topic.

Pure apart from the caller-owned :class:`SeenEvents`: decode, validate and
de-duplicate, and say exactly what to emit. The Faust agent in
``streams/agents/ingest.py`` only moves bytes in and out around this.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from streams.domain.dedup import MAX_BATCH_INDEX, SeenEvents, event_digest, position
from streams.domain.meters import MeterIndex
from streams.domain.rejections import Reason, Rejection
from streams.domain.usage import UsageEvent
from streams.domain.validation import Limits, check_event
from streams.wire.codec import SINGLE_OBJECT_MAGIC, Undecodable, UsageCodec


@dataclass(slots=True)
class Screened:
    """What one usage message becomes."""

    accepted: list[UsageEvent] = field(default_factory=list)
    rejected: list[tuple[int, Rejection, bytes]] = field(default_factory=list)
    """(index in the message, why, the original bytes of that event)."""
    emitted: list[tuple[bytes, int]] = field(default_factory=list)
    """(digest, position) of every accepted event, for the dedup log."""
    duplicates: int = 0
    forward_original: bool = False
    """Every event in the message was accepted: send the original bytes on unchanged."""


def screen(
    payload: bytes,
    offset: int,
    *,
    codec: UsageCodec,
    seen: SeenEvents,
    now: datetime,
    limits: Limits,
    max_message_bytes: int,
    meters: MeterIndex | None = None,
) -> Screened:
    out = Screened()
    if len(payload) > max_message_bytes:
        out.rejected.append(
            (
                0,
                Rejection(
                    Reason.OVERSIZED_PAYLOAD,
                    f"message is {len(payload)} bytes, limit {max_message_bytes}",
                ),
                payload,
            )
        )
        return out
    if payload[:1] == b"{":
        decoded = codec.decode(payload)[0]
        if isinstance(decoded, Rejection):
            out.rejected.append((0, decoded, payload))
            return out
        events, largest = [decoded], -1
    else:
        try:
            events, largest = codec.decode_events(payload)
        except Undecodable as exc:
            out.rejected.append((0, exc.rejection, payload))
            return out
    if len(events) >= MAX_BATCH_INDEX:
        detail = f"batch of {len(events)} events, at most {MAX_BATCH_INDEX - 1}"
        out.rejected.append((0, Rejection(Reason.OVERSIZED_PAYLOAD, detail), payload))
        return out
    single = len(events) == 1
    # No event can be bigger than the message that carries it (or than the reader saw).
    small = len(payload) <= limits.max_event_bytes or 0 <= largest <= limits.max_event_bytes
    for index, event in enumerate(events):
        rejection = check_event(event, now, limits, meters, size_known_ok=small)
        if rejection is not None:
            original = payload if single else codec.encode_event(event)
            out.rejected.append((index, rejection, original))
            continue
        digest = event_digest(event.source, event.id)
        pos = position(offset, index)
        if seen.admit(digest, pos):
            out.accepted.append(event)
            out.emitted.append((digest, pos))
        else:
            out.duplicates += 1
    out.forward_original = (
        len(out.accepted) == len(events)
        and payload[:2] == SINGLE_OBJECT_MAGIC
        and codec.is_current(payload)
    )
    return out
