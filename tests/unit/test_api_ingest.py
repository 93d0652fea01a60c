"""The pure rules of ``POST /api/v1/events``: bodies, sources, events, problem details."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from connectors.api import ingest_rules, problems
from connectors.api.ingest_rules import BATCH, JSON, SINGLE, forbidden_sources, parse_body, screen
from connectors.api.problems import InvalidEvent, Problem
from streams.domain.meters import Aggregation, Meter, MeterIndex
from streams.domain.validation import Limits

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
METERS = MeterIndex.of([Meter("ai_tokens", "ai.tokens", Aggregation.SUM, "tokens", ("model",))])


def event(**changes: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "specversion": "1.0",
        "id": "e-1",
        "source": "svc",
        "type": "ai.tokens",
        "subject": "s-1",
        "time": "2026-11-20T11:00:00Z",
        "data": {"tokens": 12.5, "model": "gpt"},
    }
    out.update(changes)
    return out


def body(value: object) -> bytes:
    return json.dumps(value).encode()


@pytest.mark.parametrize(
    ("content_type", "value", "count"),
    [
        (SINGLE, event(), 1),
        (BATCH, [event(), event(id="e-2")], 2),
        (JSON, event(), 1),
        (JSON, [event(), event(id="e-2")], 2),
        ("application/cloudevents-batch+json; charset=utf-8", [event()], 1),
        ("Application/JSON", [event()], 1),
    ],
)
def test_every_content_type_openmeter_takes(content_type: str, value: object, count: int) -> None:
    parsed = parse_body(content_type, body(value))
    assert isinstance(parsed, list) and len(parsed) == count


@pytest.mark.parametrize(
    ("content_type", "raw", "status", "words"),
    [
        ("text/plain", body(event()), 415, "Content-Type must be"),
        (None, body(event()), 415, "none"),
        (SINGLE, body([event()]), 400, "one event"),
        (BATCH, body(event()), 400, "JSON array"),
        (JSON, b"[]", 400, "no events"),
        (JSON, b"{not json", 400, "not JSON"),
        (JSON, b'{"id": "a", "id": "b"}', 400, "duplicate key 'id'"),
        (JSON, b'{"id": "\xff"}', 400, "not UTF-8"),
    ],
)
def test_bodies_refused_whole(
    content_type: str | None, raw: bytes, status: int, words: str
) -> None:
    parsed = parse_body(content_type, raw)
    assert isinstance(parsed, Problem)
    assert parsed.status == status and words in parsed.detail


def test_numbers_are_parsed_exactly() -> None:
    parsed = parse_body(SINGLE, b'{"data": {"tokens": 0.1000000000000000055511151231257827}}')
    assert isinstance(parsed, list)
    assert parsed[0]["data"]["tokens"] == Decimal("0.1000000000000000055511151231257827")


def test_valid_events_become_usage_events() -> None:
    result = screen([event(), event(id="e-2")], NOW, Limits(), METERS)
    assert not result.invalid
    assert [e.id for e in result.events] == ["e-1", "e-2"]
    assert result.events[0].values == {"tokens": Decimal("12.5")}
    assert result.events[0].dimensions == {"model": "gpt"}


def test_every_invalid_event_is_listed_with_index_id_and_reason() -> None:
    objs = [
        event(),
        event(id="e-2", subject=""),
        "not an event",
        event(id="e-4", data={"tokens": -1}),
        event(id="e-5", time="2020-01-01T00:00:00Z"),
        event(id="e-6", type="unknown.type"),
        event(id="e-7", data={"tokens": "many"}),
        event(id="e-8", specversion="0.3"),
        event(id=7),
    ]
    result = screen(objs, NOW, Limits(), METERS)
    assert [(p.index, p.id, p.reason) for p in result.invalid] == [
        (1, "e-2", "missing_field"),
        (2, None, "malformed_payload"),
        (3, "e-4", "negative_value"),
        (4, "e-5", "timestamp_out_of_range"),
        (5, "e-6", "unknown_meter"),
        (6, "e-7", "non_numeric_value"),
        (7, "e-8", "invalid_field"),
        (8, None, "invalid_field"),
    ]
    assert [e.id for e in result.events] == ["e-1"]


def test_an_event_without_time_gets_the_request_time_as_openmeter_does() -> None:
    no_time = event()
    del no_time["time"]
    result = screen([no_time, event(id="e-2", time=None)], NOW, Limits(), METERS)
    assert [e.time for e in result.events] == [NOW, NOW]


def test_without_meters_only_the_contract_is_checked() -> None:
    assert not screen([event(type="anything")], NOW, Limits(), None).invalid


def test_the_clock_reading_decides_skew() -> None:
    ahead = event(time=(NOW + timedelta(hours=2)).isoformat())
    assert screen([ahead], NOW, Limits(), METERS).invalid
    assert not screen([ahead], NOW + timedelta(hours=1), Limits(), METERS).invalid


def test_sources_a_key_may_not_send() -> None:
    objs = [event(), event(id="e-2", source="other"), "junk", event(id="e-4", source=None)]
    assert forbidden_sources(objs, None) == []
    refused = forbidden_sources(objs, frozenset({"svc"}))
    assert [(p.index, p.id, p.reason) for p in refused] == [
        (1, "e-2", "source_not_allowed"),
        (2, None, "source_not_allowed"),
        (3, "e-4", "source_not_allowed"),
    ]
    assert forbidden_sources(objs[:1], frozenset({"svc"})) == []


def test_problem_details_as_rfc_9457() -> None:
    listed = [InvalidEvent(i, f"e-{i}", "missing_field", "id is missing") for i in range(7)]
    problem = problems.invalid_events(listed, 10)
    doc = problem.to_json("/api/v1/events")
    assert doc["type"] == problems.TYPE_BASE + "invalid-events"
    assert doc["title"] == "Bad Request" and doc["status"] == 400
    assert doc["instance"] == "/api/v1/events"
    assert doc["detail"].startswith("7 of 10 events are invalid: #0 (missing_field)")
    assert "and 2 more" in doc["detail"] and "none was ingested" in doc["detail"]
    assert len(doc["invalid_events"]) == 7
    assert doc["invalid_events"][3] == {
        "index": 3,
        "id": "e-3",
        "reason": "missing_field",
        "detail": "id is missing",
    }
    assert problem.headers() == {}
    forbidden = problems.forbidden_sources(listed[:1], 3).to_json("/x")
    assert forbidden["status"] == 403 and forbidden["title"] == "Forbidden"


def test_retry_after_header_and_plain_problem() -> None:
    problem = Problem(429, "rate-limited", "slow down", retry_after_s=3)
    assert problem.headers() == {"Retry-After": "3"}
    doc = problem.to_json("/api/v1/events")
    assert "invalid_events" not in doc and doc["title"] == "Too Many Requests"
    assert Problem(418, "teapot", "x").to_json("/")["title"] == "Error"


def test_media_type() -> None:
    assert ingest_rules.media_type(" application/JSON ; charset=utf-8") == "application/json"
    assert ingest_rules.media_type(None) == ""
