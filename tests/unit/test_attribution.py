"""Attribution of accepted usage to customers under one catalog (streams/domain/attribution.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from textwrap import dedent
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.domain.attribution import attribute
from streams.domain.catalog import Catalog, parse_catalog

# key_a moves from acme to globex at MOVE; key_g belongs to globex from 2026-01-01 on;
# key_old billed to acme until ENDED and to nobody since.
CATALOG = dedent(
    """\
    meters:
      - {key: api_calls, event_type: api.calls, aggregation: SUM, value_property: calls}
    customers:
      - key: acme
        billing: {currency: USD, anchor_day: 1, rail: stripe, segment: self_service, region: us-east-1}
      - key: globex
        billing: {currency: EUR, anchor_day: 28, rail: netsuite, segment: enterprise, region: eu-west-1}
    subjects:
      - {customer: acme, subject: key_a, effective_from: 2026-01-01T00:00:00Z, effective_to: 2026-11-15T00:00:00Z}
      - {customer: globex, subject: key_a, effective_from: 2026-11-15T00:00:00Z}
      - {customer: globex, subject: key_g, effective_from: 2026-01-01T00:00:00Z}
      - {customer: acme, subject: key_old, effective_from: 2026-01-01T00:00:00Z, effective_to: 2026-06-01T00:00:00Z}
    """
)
START = datetime(2026, 1, 1, tzinfo=UTC)
MOVE = datetime(2026, 11, 15, tzinfo=UTC)
ENDED = datetime(2026, 6, 1, tzinfo=UTC)
TICK = timedelta(microseconds=1)


def catalog(text: str = CATALOG) -> Catalog:
    parsed, problems = parse_catalog(text, "cat.yaml")
    assert problems == [] and parsed is not None, problems
    return parsed


def record(subject: str, time: datetime, id: str = "e1") -> dict[str, Any]:
    return {
        "id": id,
        "source": "api-gateway",
        "type": "api.calls",
        "subject": subject,
        "time": time,
        "values": {"calls": Decimal(1)},
        "dimensions": {},
    }


def customers(result_items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(item["event"]["id"], item["customer"]) for item in result_items]


def test_an_attributed_item_carries_customer_version_partition_and_the_event_itself() -> None:
    cat = catalog()
    event = record("key_g", MOVE, "e1")
    result = attribute([event], cat, source_partition=3)
    assert result.parked == []
    assert result.attributed == [
        {
            "customer": "globex",
            "catalog_version": cat.version,
            "source_partition": 3,
            "event": event,
        }
    ]
    assert result.attributed[0]["event"] is event


def test_source_partition_defaults_to_zero() -> None:
    [item] = attribute([record("key_g", MOVE)], catalog()).attributed
    assert item["source_partition"] == 0


def test_attributed_items_keep_input_order_across_customers_and_times() -> None:
    # Interleaved customers, times out of order: never regrouped, never sorted.
    records = [
        record("key_g", MOVE + timedelta(hours=2), "1"),
        record("key_a", MOVE - timedelta(days=3), "2"),
        record("key_g", MOVE - timedelta(days=1), "3"),
        record("key_a", MOVE + timedelta(hours=1), "4"),
        record("key_a", START, "5"),
    ]
    result = attribute(records, catalog(), source_partition=1)
    assert [item["event"] for item in result.attributed] == records
    assert customers(result.attributed) == [
        ("1", "globex"),
        ("2", "acme"),
        ("3", "globex"),
        ("4", "globex"),
        ("5", "acme"),
    ]


def test_a_subject_that_moves_bills_each_customer_by_event_time() -> None:
    records = [
        record("key_a", MOVE, "at the move"),
        record("key_a", MOVE - TICK, "just before"),
        record("key_a", MOVE + TICK, "just after"),
    ]
    result = attribute(records, catalog())
    assert customers(result.attributed) == [
        ("at the move", "globex"),  # periods are half-open: the new owner has the instant
        ("just before", "acme"),
        ("just after", "globex"),
    ]


def test_the_move_is_an_instant_whatever_zone_the_event_time_is_written_in() -> None:
    plus_one = timezone(timedelta(hours=1))
    same_instant = datetime(2026, 11, 15, 1, 0, tzinfo=plus_one)
    one_before = datetime(2026, 11, 15, 0, 59, 59, 999999, tzinfo=plus_one)
    result = attribute(
        [record("key_a", same_instant, "x"), record("key_a", one_before, "y")], catalog()
    )
    assert customers(result.attributed) == [("x", "globex"), ("y", "acme")]


@pytest.mark.parametrize(
    "subject, time, why",
    [
        ("key_unknown", MOVE, "no customer ever claimed it"),
        ("key_a", START - TICK, "before its first assignment"),
        ("key_old", ENDED, "its only assignment ended (end is exclusive)"),
        ("key_old", ENDED + timedelta(days=30), "its only assignment ended"),
    ],
)
def test_unclaimed_usage_is_parked_not_dropped(subject: str, time: datetime, why: str) -> None:
    event = record(subject, time)
    result = attribute([event], catalog())
    assert result.attributed == [], why
    assert result.parked == [event] and result.parked[0] is event


def test_parked_and_attributed_split_a_batch_each_in_input_order() -> None:
    records = [
        record("key_x", MOVE, "p1"),
        record("key_a", MOVE, "a1"),
        record("key_old", ENDED, "p2"),
        record("key_g", MOVE, "a2"),
        record("key_x", START, "p3"),
    ]
    result = attribute(records, catalog(), source_partition=2)
    assert [r["id"] for r in result.parked] == ["p1", "p2", "p3"]
    assert [item["event"]["id"] for item in result.attributed] == ["a1", "a2"]


def test_records_are_not_modified() -> None:
    records = [record("key_a", MOVE), record("key_x", MOVE)]
    before = [dict(r) for r in records]
    attribute(records, catalog(), source_partition=1)
    assert records == before


def test_nothing_in_nothing_out() -> None:
    result = attribute([], catalog())
    assert result.attributed == [] and result.parked == []


def test_any_iterable_is_accepted() -> None:
    result = attribute((record("key_g", MOVE, str(i)) for i in range(3)), catalog())
    assert [item["event"]["id"] for item in result.attributed] == ["0", "1", "2"]


def test_a_naive_event_time_is_refused_not_guessed() -> None:
    with pytest.raises(ValueError, match="naive"):
        attribute([record("key_a", datetime(2026, 11, 15))], catalog())  # noqa: DTZ001


def test_parked_usage_is_claimed_under_a_later_catalog_and_carries_its_version() -> None:
    first = catalog()
    later = catalog(
        CATALOG + "  - {customer: acme, subject: key_new, effective_from: 2026-10-01T00:00:00Z}\n"
    )
    assert later.version != first.version
    early, claimed = record("key_new", MOVE - timedelta(days=60), "1"), record("key_new", MOVE, "2")
    parked = attribute([early, claimed], first).parked
    assert parked == [early, claimed]

    released = attribute(parked, later, source_partition=2)
    assert released.parked == [early]  # before the new assignment: still nobody's
    assert released.attributed == [
        {
            "customer": "acme",
            "catalog_version": later.version,
            "source_partition": 2,
            "event": claimed,
        }
    ]


SUBJECTS = ["key_a", "key_g", "key_old", "key_x"]
instants = st.datetimes(
    min_value=datetime(2025, 12, 1),  # noqa: DTZ001 (hypothesis bounds are naive)
    max_value=datetime(2027, 1, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(SUBJECTS), instants), max_size=30), st.integers(0, 7))
def test_every_record_lands_once_in_order_with_the_catalogs_answer(
    pairs: list[tuple[str, datetime]], partition: int
) -> None:
    cat = catalog()
    records = [record(subject, time, str(i)) for i, (subject, time) in enumerate(pairs)]
    result = attribute(records, cat, partition)

    expected_attributed = [r for r in records if cat.customer_for(r["subject"], r["time"])]
    assert [item["event"] for item in result.attributed] == expected_attributed
    assert result.parked == [r for r in records if not cat.customer_for(r["subject"], r["time"])]
    for item in result.attributed:
        event = item["event"]
        assert item["customer"] == cat.customer_for(event["subject"], event["time"])
        assert item["catalog_version"] == cat.version
        assert item["source_partition"] == partition
