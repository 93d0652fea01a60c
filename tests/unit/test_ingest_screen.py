"""What one message of the ``usage`` topic becomes (streams/agents/ingest_rules.py::screen)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.agents.ingest_rules import Screened, screen
from streams.domain.cloudevents import to_json
from streams.domain.dedup import MAX_BATCH_INDEX, SeenEvents, Verdict, event_digest, position
from streams.domain.meters import Aggregation, Meter, MeterIndex
from streams.domain.rejections import Reason
from streams.domain.usage import UsageEvent
from streams.domain.validation import Limits
from streams.wire.codec import (
    EVENT_VERSIONS,
    SINGLE_OBJECT_MAGIC,
    UsageCodec,
    batch_schema,
)
from tests.unit.avro_vectors import single_object as v1_single_object
from tests.unit.avro_vectors import v1_record

NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
LIMITS = Limits()
MAX_MESSAGE = 1 << 20
CODEC = UsageCodec()


def make_event(n: int = 0, **changes: Any) -> UsageEvent:
    event = UsageEvent(
        id=f"evt-{n}",
        source="api-gateway/eu-west-1",
        type="ai.tokens",
        subject="ws-42",
        time=NOW - timedelta(minutes=5),
        values={"tokens": Decimal(100 + n)},
        dimensions={"model": "gpt-x"},
    )
    return event._replace(**changes)


def run(
    payload: bytes,
    offset: int = 7,
    seen: SeenEvents | None = None,
    max_message_bytes: int = MAX_MESSAGE,
    meters: MeterIndex | None = None,
) -> Screened:
    return screen(
        payload,
        offset,
        codec=CODEC,
        seen=SeenEvents() if seen is None else seen,
        now=NOW,
        limits=LIMITS,
        max_message_bytes=max_message_bytes,
        meters=meters,
    )


def accepted_events(result: Screened) -> list[UsageEvent]:
    return result.accepted


# -- all good ------------------------------------------------------------------------------


def test_valid_batch_is_forwarded_as_is() -> None:
    events = [make_event(i) for i in range(3)]

    result = run(CODEC.encode_batch(events), offset=7)

    assert result.forward_original is True
    assert accepted_events(result) == events
    assert result.rejected == []
    assert result.duplicates == 0
    assert result.emitted == [
        (event_digest(e.source, e.id), position(7, i)) for i, e in enumerate(events)
    ]


def test_valid_single_event_is_forwarded_as_is() -> None:
    result = run(CODEC.encode_event(make_event()), offset=0)

    assert result.forward_original is True
    assert accepted_events(result) == [make_event()]
    assert result.emitted == [(event_digest("api-gateway/eu-west-1", "evt-0"), position(0, 0))]


def test_admitted_events_are_remembered_in_the_callers_memory() -> None:
    seen = SeenEvents()
    run(CODEC.encode_batch([make_event(1), make_event(2)]), offset=3, seen=seen)

    assert len(seen) == 2
    assert (
        seen.classify(event_digest(make_event(2).source, "evt-2"), position(3, 1)) is Verdict.REPLAY
    )


# -- bad events -------------------------------------------------------------------------------


def test_bad_event_in_a_batch_is_rejected_alone_with_its_own_bytes() -> None:
    bad = make_event(1, values={"tokens": Decimal(-5)})
    events = [make_event(0), bad, make_event(2)]

    result = run(CODEC.encode_batch(events), offset=9)

    assert result.forward_original is False
    assert accepted_events(result) == [events[0], events[2]]
    assert [p for _, p in result.emitted] == [position(9, 0), position(9, 2)]
    ((index, rejection, original),) = result.rejected
    assert index == 1
    assert rejection.reason is Reason.NEGATIVE_VALUE
    assert (rejection.event_id, rejection.subject) == ("evt-1", "ws-42")
    assert original[:2] == SINGLE_OBJECT_MAGIC
    assert CODEC.is_current(original)
    assert CODEC.decode(original) == [bad]


def test_bad_single_event_keeps_the_whole_message_as_original() -> None:
    payload = CODEC.encode_event(make_event(time=NOW + timedelta(days=1)))

    result = run(payload)

    assert result.accepted == [] and result.emitted == []
    assert result.forward_original is False
    ((index, rejection, original),) = result.rejected
    assert (index, rejection.reason, original) == (0, Reason.TIMESTAMP_OUT_OF_RANGE, payload)


def test_every_bad_event_of_a_batch_is_rejected() -> None:
    events = [
        make_event(0, id=""),
        make_event(1),
        make_event(2, time=NOW.replace(year=2020)),
        make_event(3, dimensions={"tokens": "x"}),
    ]

    result = run(CODEC.encode_batch(events))

    assert [(i, r.reason) for i, r, _ in result.rejected] == [
        (0, Reason.MISSING_FIELD),
        (2, Reason.TIMESTAMP_OUT_OF_RANGE),
        (3, Reason.INVALID_FIELD),
    ]
    assert accepted_events(result) == [events[1]]


def test_undecodable_message_is_rejected_whole() -> None:
    payload = b"\xc3\x01" + b"\x00" * 20

    result = run(payload)

    assert [(i, r.reason, o) for i, r, o in result.rejected] == [
        (0, Reason.UNKNOWN_SCHEMA, payload)
    ]
    assert (result.accepted, result.emitted, result.forward_original) == ([], [], False)


def test_garbage_message_is_malformed() -> None:
    result = run(b"not usage")

    assert [(i, r.reason) for i, r, _ in result.rejected] == [(0, Reason.MALFORMED_PAYLOAD)]


def test_event_no_meter_reads_is_rejected_when_meters_are_given() -> None:
    meters = MeterIndex.of([Meter("ai_tokens", "ai.tokens", Aggregation.SUM, "tokens")])
    events = [make_event(0), make_event(1, type="gpu.minutes")]

    result = run(CODEC.encode_batch(events), meters=meters)

    assert accepted_events(result) == [events[0]]
    assert [(i, r.reason) for i, r, _ in result.rejected] == [(1, Reason.UNKNOWN_METER)]


# -- size ----------------------------------------------------------------------------------------


def test_message_over_the_limit_is_rejected_unread() -> None:
    payload = CODEC.encode_batch([make_event(i) for i in range(5)])
    seen = SeenEvents()

    result = run(payload, max_message_bytes=len(payload) - 1, seen=seen)

    ((index, rejection, original),) = result.rejected
    assert (index, rejection.reason, original) == (0, Reason.OVERSIZED_PAYLOAD, payload)
    assert str(len(payload)) in rejection.detail
    assert result.accepted == [] and len(seen) == 0


def test_message_of_exactly_the_limit_is_read() -> None:
    payload = CODEC.encode_batch([make_event(i) for i in range(5)])

    assert run(payload, max_message_bytes=len(payload)).forward_original is True


# -- duplicates and replays ---------------------------------------------------------------------------


def test_duplicate_inside_a_message_is_dropped() -> None:
    events = [make_event(0), make_event(1), make_event(0, values={"tokens": Decimal(999)})]

    result = run(CODEC.encode_batch(events))

    assert accepted_events(result) == events[:2]
    assert result.duplicates == 1
    assert result.forward_original is False


def test_duplicate_across_messages_is_dropped() -> None:
    seen = SeenEvents()
    run(CODEC.encode_event(make_event(0)), offset=1, seen=seen)

    result = run(CODEC.encode_batch([make_event(0), make_event(5)]), offset=2, seen=seen)

    assert accepted_events(result) == [make_event(5)]
    assert result.duplicates == 1
    assert result.emitted == [(event_digest(make_event(5).source, "evt-5"), position(2, 1))]
    assert result.forward_original is False


def test_duplicate_of_an_earlier_offset_is_dropped_even_when_it_comes_first() -> None:
    seen = SeenEvents()
    run(CODEC.encode_event(make_event(0)), offset=10, seen=seen)

    result = run(CODEC.encode_event(make_event(0)), offset=4, seen=seen)

    assert (result.accepted, result.duplicates) == ([], 1)


def test_replay_of_the_same_offset_emits_the_same_again() -> None:
    seen = SeenEvents()
    payload = CODEC.encode_batch([make_event(0), make_event(1), make_event(0)])
    first = run(payload, offset=4, seen=seen)

    again = run(payload, offset=4, seen=seen)

    assert again.accepted == first.accepted
    assert again.emitted == first.emitted
    assert again.duplicates == first.duplicates == 1
    assert len(seen) == 2


def test_replay_of_a_fully_accepted_message_is_forwarded_again() -> None:
    seen = SeenEvents()
    payload = CODEC.encode_event(make_event())
    run(payload, offset=4, seen=seen)

    assert run(payload, offset=4, seen=seen).forward_original is True
    assert run(payload, offset=5, seen=seen).forward_original is False


@settings(max_examples=60, deadline=None)
@given(
    keys=st.lists(st.integers(0, 6), min_size=1, max_size=12),
    offset=st.integers(0, 2**40),
)
def test_screening_is_the_same_after_a_replay(keys: list[int], offset: int) -> None:
    payload = CODEC.encode_batch([make_event(k) for k in keys])
    seen = SeenEvents()

    first = run(payload, offset=offset, seen=seen)
    again = run(payload, offset=offset, seen=seen)
    elsewhere = run(payload, offset=offset + 1, seen=seen)

    assert [e.id for e in accepted_events(first)] == [f"evt-{k}" for k in dict.fromkeys(keys)]
    assert first.duplicates == len(keys) - len(set(keys))
    assert (again.accepted, again.emitted, again.duplicates) == (
        first.accepted,
        first.emitted,
        first.duplicates,
    )
    assert (elsewhere.accepted, elsewhere.duplicates) == ([], len(keys))
    assert first.forward_original is (len(set(keys)) == len(keys))


# -- other framings ---------------------------------------------------------------------------------


def test_json_message_is_accepted_but_not_forwarded_as_is() -> None:
    event = make_event()
    payload = to_json(event).encode()

    result = run(payload, offset=3)

    assert accepted_events(result) == [event]
    assert result.emitted == [(event_digest(event.source, event.id), position(3, 0))]
    assert result.forward_original is False


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"id": "e1", "source": "s", "type": "t", "subject": "w"}', Reason.MISSING_FIELD),
        (b"{not json", Reason.MALFORMED_PAYLOAD),
        (to_json(make_event(values={"tokens": Decimal(-1)})).encode(), Reason.NEGATIVE_VALUE),
        (
            to_json(make_event(time=NOW - timedelta(days=41))).encode(),
            Reason.TIMESTAMP_OUT_OF_RANGE,
        ),
    ],
    ids=["missing-time", "not-json", "negative", "too-old"],
)
def test_json_message_rejected(payload: bytes, reason: Reason) -> None:
    result = run(payload)

    assert [(i, r.reason, o) for i, r, o in result.rejected] == [(0, reason, payload)]
    assert result.accepted == [] and result.emitted == []


def test_v1_message_is_accepted_but_not_forwarded_as_is() -> None:
    events = [make_event(0), make_event(1)]
    payload = v1_single_object(
        batch_schema(EVENT_VERSIONS[1]), {"events": [v1_record(e) for e in events]}
    )

    result = run(payload)

    assert accepted_events(result) == events
    assert result.forward_original is False
    assert CODEC.decode(CODEC.encode_batch(result.accepted)) == events


def test_v1_single_event_is_accepted_but_not_forwarded_as_is() -> None:
    payload = v1_single_object(EVENT_VERSIONS[1], v1_record(make_event()))

    result = run(payload)

    assert accepted_events(result) == [make_event()]
    assert result.forward_original is False


# -- limits of a batch -------------------------------------------------------------------------------


def test_batch_with_more_events_than_positions_is_rejected_not_raised() -> None:
    tiny = UsageEvent("i", "s", "t", "w", NOW, {}, {}, None, "")
    one = CODEC.encode_batch([tiny])  # header, count 1 (0x02), the event, end of array (0x00)
    assert one[10] == 0x02 and one[-1] == 0x00
    count = io.BytesIO()
    fastavro.schemaless_writer(count, "long", MAX_BATCH_INDEX + 1)
    payload = one[:10] + count.getvalue() + one[11:-1] * (MAX_BATCH_INDEX + 1) + b"\x00"
    assert len(payload) < 2 * MAX_MESSAGE

    result = run(payload, max_message_bytes=2 * MAX_MESSAGE)

    assert result.rejected


def test_quantity_with_20_integer_digits_does_not_crash_screen() -> None:
    event = make_event(values={"tokens": Decimal(10**19)})

    result = run(CODEC.encode_event(event))

    assert accepted_events(result) == [event]
