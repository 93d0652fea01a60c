"""The synthetic workload: deterministic, exact in its counts, and schema-true."""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import median
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.files import write_jsonl
from streams.domain.errors import ConfigError
from streams.domain.workload import (
    CustomerProfile,
    Defect,
    EventType,
    GeneratedEvent,
    Workload,
    WorkloadSpec,
    customer_profiles,
    generate,
    iter_events,
)
from streams.domain.workload.vocabulary import ENDPOINTS, GPU_TYPES, MODELS, REGIONS

MESSY = WorkloadSpec(
    seed=11,
    customers=12,
    events=6_000,
    duplicate_rate=0.05,
    invalid_rate=0.06,
    late_rate=0.04,
    unknown_subject_rate=0.03,
)
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
ENVELOPE_KEYS = {"specversion", "id", "source", "type", "subject", "time", "data"}
DATA_FIELDS: dict[str, dict[str, type]] = {
    "ai.tokens": {"tokens": int, "model": str, "direction": str},
    "gpu.minutes": {"minutes": float, "gpu_type": str, "region": str},
    "api.calls": {"calls": int, "endpoint": str, "region": str},
    "seats.active": {"seats": int, "workspace": str},
}
PRODUCERS = {
    "ai.tokens": "llm-gateway",
    "gpu.minutes": "gpu-scheduler",
    "api.calls": "api-gateway",
    "seats.active": "workspace-service",
}


@pytest.fixture(scope="module")
def messy() -> Workload:
    return generate(MESSY)


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def clock(spec: WorkloadSpec, position: int) -> datetime:
    """The stream clock the spec documents: ``start + duration * position / events``."""
    return spec.start + spec.duration * position / spec.events


def on_time(generated: GeneratedEvent) -> bool:
    return generated.valid and generated.duplicate_of is None and not generated.late


def is_unknown_subject(generated: GeneratedEvent) -> bool:
    return on_time(generated) and generated.customer is None


def assert_schema(event: dict[str, Any]) -> None:
    assert set(event) == ENVELOPE_KEYS
    assert event["specversion"] == "1.0"
    assert str(uuid.UUID(event["id"])) == event["id"]
    assert uuid.UUID(event["id"]).version == 4
    kind = event["type"]
    assert type(kind) is str and kind in {t.value for t in EventType}
    producer, region = event["source"].split("/")
    assert producer == PRODUCERS[kind] and region in REGIONS
    assert type(event["subject"]) is str and event["subject"].startswith(("key_", "ws_"))
    assert RFC3339_UTC.match(event["time"])
    data = event["data"]
    assert {name: type(value) for name, value in data.items()} == DATA_FIELDS[kind]
    if kind == "ai.tokens":
        assert data["tokens"] >= 1
        assert data["model"] in MODELS
        assert data["direction"] in {"input", "output"}
    elif kind == "gpu.minutes":
        assert data["minutes"] >= 0.001 and round(data["minutes"], 3) == data["minutes"]
        assert data["gpu_type"] in GPU_TYPES and data["region"] in REGIONS
    elif kind == "api.calls":
        assert 1 <= data["calls"] <= 20
        assert data["endpoint"] in ENDPOINTS and data["region"] in REGIONS
    else:
        assert data["seats"] >= 1
        assert event["subject"].startswith("ws_")


def test_same_spec_gives_byte_identical_jsonl(tmp_path: Path) -> None:
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert write_jsonl(generate(MESSY).events, first) == MESSY.events
    assert write_jsonl(iter_events(MESSY), second) == MESSY.events
    assert first.read_bytes() == second.read_bytes()
    lines = first.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "" and len(lines) == MESSY.events + 1


def test_another_seed_gives_other_lines() -> None:
    spec = WorkloadSpec(events=200)
    other = WorkloadSpec(seed=8, events=200)
    assert [g.line for g in iter_events(spec)] != [g.line for g in iter_events(other)]


def test_events_counts_every_line_and_each_category_exactly(messy: Workload) -> None:
    events = messy.events
    assert len(events) == MESSY.events
    assert sum(g.duplicate_of is not None for g in events) == round(6_000 * 0.05)
    assert sum(g.defect is not None for g in events) == round(6_000 * 0.06)
    assert sum(g.late for g in events) == round(6_000 * 0.04)
    assert sum(is_unknown_subject(g) for g in events) == round(6_000 * 0.03)
    assert MESSY.clean == 6_000 - 300 - 360 - 240 - 180


def test_every_defect_kind_appears_evenly(messy: Workload) -> None:
    kinds = Counter(g.defect for g in messy.events if g.defect is not None)
    assert set(kinds) == set(Defect)
    assert max(kinds.values()) - min(kinds.values()) <= 1


def test_each_defect_is_what_it_claims(messy: Workload) -> None:
    for generated in messy.events:
        defect, event, line = generated.defect, generated.event, generated.line
        assert "\n" not in line
        if defect is Defect.MALFORMED_JSON:
            assert event is None and generated.customer is None
            with pytest.raises(json.JSONDecodeError):
                json.loads(line)
            continue
        assert event is not None and json.loads(line) == event
        if defect is None:
            continue
        value = next(iter(event["data"].values()))
        if defect is Defect.NEGATIVE_VALUE:
            assert isinstance(value, int | float) and value < 0
        elif defect is Defect.NON_NUMERIC_VALUE:
            assert isinstance(value, str)
        elif defect is Defect.MISSING_FIELD:
            assert len({"id", "subject", "time"} - set(event)) == 1
        elif defect is Defect.ABSURD_TIME:
            assert parse_time(event["time"]).year in {1970, 2100}
        elif defect is Defect.OVERSIZED:
            assert len(line) > 64 * 1024
            assert max(len(v) for v in event["data"].values() if isinstance(v, str)) > 64 * 1024


def test_valid_events_have_the_exact_schema_and_compact_json_lines(messy: Workload) -> None:
    valid = [g for g in messy.events if g.valid]
    assert {g.event["type"] for g in valid if g.event} == {t.value for t in EventType}
    for generated in valid:
        assert generated.event is not None
        assert_schema(generated.event)
        assert generated.line == json.dumps(generated.event, separators=(",", ":"))


def test_times_are_rfc3339_utc_and_inside_the_window(messy: Workload) -> None:
    end = MESSY.start + MESSY.duration
    for generated in messy.events:
        if generated.valid and generated.event is not None:
            moment = parse_time(generated.event["time"])
            assert moment.utcoffset() == timedelta(0)
            assert MESSY.start <= moment < end


def test_a_clean_stream_is_in_time_order() -> None:
    spec = WorkloadSpec(events=3_000)
    times = [parse_time(g.event["time"]) for g in iter_events(spec) if g.event]
    assert times == sorted(times)


def test_late_events_are_well_behind_the_stream_clock(messy: Workload) -> None:
    newest = MESSY.start
    for position, generated in enumerate(messy.events):
        if not generated.valid or generated.event is None:
            continue
        moment = parse_time(generated.event["time"])
        if generated.late:
            assert moment <= clock(MESSY, position) - MESSY.late_by
            assert moment < newest - MESSY.late_by / 2
        elif generated.duplicate_of is None:
            newest = max(newest, moment)


def test_subjects_map_to_their_customers(messy: Workload) -> None:
    owners = messy.subject_owners
    assert len(owners) == sum(len(c.subjects) for c in messy.customers)
    assert len({c.name for c in messy.customers}) == MESSY.customers
    for generated in messy.events:
        event = generated.event
        if event is None or "subject" not in event:
            assert generated.customer is None
        elif generated.customer is not None:
            assert owners[event["subject"]] == generated.customer
        else:
            assert event["subject"] not in owners


def test_customers_depend_only_on_seed_and_count() -> None:
    small = customer_profiles(WorkloadSpec(events=10))
    assert small == customer_profiles(WorkloadSpec(customers=20, invalid_rate=0.5))
    assert small != customer_profiles(WorkloadSpec(seed=8))


def test_a_few_customers_dominate() -> None:
    workload = generate(WorkloadSpec(events=8_000))
    weights = [c.weight for c in workload.customers]
    assert weights == sorted(weights, reverse=True) and sum(weights) == pytest.approx(1.0)
    volume = Counter(g.customer for g in workload.events)
    shares = sorted(volume.values(), reverse=True)
    assert shares[0] > 5 * median(shares)


def test_customer_profiles_are_coherent(messy: Workload) -> None:
    for customer in messy.customers:
        assert isinstance(customer, CustomerProfile)
        assert 1 <= len(customer.api_keys) <= 4
        assert all(key.startswith("key_") for key in customer.api_keys)
        assert bool(customer.workspaces) == (EventType.SEATS_ACTIVE in customer.event_types)
        assert EventType.API_CALLS in customer.event_types
        assert customer.currency in {"USD", "EUR"}


def test_token_requests_come_as_input_then_smaller_output() -> None:
    workload = generate(WorkloadSpec(events=4_000))
    tokens = [g.event for g in workload.events if g.event and g.event["type"] == "ai.tokens"]
    assert len(tokens) % 2 == 0
    for request, answer in zip(tokens[::2], tokens[1::2], strict=True):
        assert request["data"]["direction"] == "input"
        assert answer["data"]["direction"] == "output"
        for field in ("subject", "time", "source"):
            assert request[field] == answer[field]
        assert request["data"]["model"] == answer["data"]["model"]
    inputs = [e["data"]["tokens"] for e in tokens[::2]]
    outputs = [e["data"]["tokens"] for e in tokens[1::2]]
    assert median(outputs) < median(inputs)
    assert max(inputs) > 20 * median(inputs)  # heavy tail


def test_seat_gauges_report_periodically() -> None:
    workload = generate(WorkloadSpec(events=10_000))
    readings: dict[str, list[datetime]] = {}
    for generated in workload.events:
        if generated.event and generated.event["type"] == "seats.active":
            readings.setdefault(generated.event["subject"], []).append(
                parse_time(generated.event["time"])
            )
    assert readings
    for times in readings.values():
        gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
        assert all(timedelta(minutes=55) <= gap <= timedelta(minutes=65) for gap in gaps)


def test_duplicates_resend_an_earlier_original_byte_for_byte(messy: Workload) -> None:
    first_seen: dict[str, int] = {}
    distances = []
    for position, generated in enumerate(messy.events):
        if generated.duplicate_of is None:
            if generated.event and "id" in generated.event:
                assert generated.event["id"] not in first_seen, "ids are unique"
                first_seen[generated.event["id"]] = position
            continue
        original = messy.events[first_seen[generated.duplicate_of]]
        assert original.valid and generated.line == original.line
        assert generated.event == original.event and generated.customer == original.customer
        distances.append(position - first_seen[generated.duplicate_of])
    assert min(distances) <= 3, "some re-sends are immediate retries"
    assert max(distances) > MESSY.events // 4, "some re-sends come much later"


def test_streaming_is_lazy() -> None:
    first = next(iter_events(WorkloadSpec(events=10**9)))
    assert first.valid


def test_no_events_is_an_empty_workload() -> None:
    assert generate(WorkloadSpec(events=0)).events == ()


def test_a_bad_spec_lists_every_problem() -> None:
    with pytest.raises(ConfigError) as raised:
        WorkloadSpec(
            customers=0,
            start=datetime(2026, 11, 1),  # noqa: DTZ001 - the naive datetime under test
            invalid_rate=1.5,
            duration=timedelta(0),
        )
    message = str(raised.value)
    for fragment in ("customers", "start", "invalid_rate", "duration"):
        assert fragment in message


def test_rates_beyond_the_line_count_are_rejected() -> None:
    with pytest.raises(ConfigError, match="more than every event"):
        WorkloadSpec(events=100, invalid_rate=0.6, duplicate_rate=0.6)
    with pytest.raises(ConfigError, match="late_by"):
        WorkloadSpec(events=100, late_rate=0.5, late_by=timedelta(hours=20))
    with pytest.raises(ConfigError, match="original"):
        WorkloadSpec(events=10, duplicate_rate=0.5, invalid_rate=0.5)


rates = st.floats(min_value=0.0, max_value=0.3)


@st.composite
def small_specs(draw: st.DrawFn) -> WorkloadSpec:
    duration = timedelta(seconds=draw(st.integers(min_value=1, max_value=7 * 86_400)))
    try:
        return WorkloadSpec(
            seed=draw(st.integers(min_value=0, max_value=2**32)),
            customers=draw(st.integers(min_value=1, max_value=15)),
            events=draw(st.integers(min_value=0, max_value=400)),
            start=datetime(2026, 11, 1, tzinfo=UTC)
            + timedelta(minutes=draw(st.integers(0, 10**6))),
            duration=duration,
            duplicate_rate=draw(rates),
            invalid_rate=draw(rates),
            late_rate=draw(rates),
            unknown_subject_rate=draw(rates),
            late_by=duration / draw(st.integers(min_value=2, max_value=50)),
        )
    except ConfigError:
        # Tiny specs can round into infeasible ones; rejection is the tested behaviour.
        return draw(st.nothing())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=small_specs())
def test_any_small_spec_is_exact_deterministic_and_valid(spec: WorkloadSpec) -> None:
    workload = generate(spec)
    assert [g.line for g in iter_events(spec)] == [g.line for g in workload.events]
    events = workload.events
    assert len(events) == spec.events
    assert sum(g.duplicate_of is not None for g in events) == spec.duplicates
    assert sum(g.defect is not None for g in events) == spec.invalid
    assert sum(g.late for g in events) == spec.late
    assert sum(is_unknown_subject(g) for g in events) == spec.unknown_subjects
    end = spec.start + spec.duration
    for position, generated in enumerate(events):
        if not generated.valid:
            continue
        assert generated.event is not None
        assert_schema(generated.event)
        moment = parse_time(generated.event["time"])
        assert spec.start <= moment < end
        if generated.late:
            assert moment <= clock(spec, position) - spec.late_by
        if generated.customer is not None:
            assert workload.subject_owners[generated.event["subject"]] == generated.customer
