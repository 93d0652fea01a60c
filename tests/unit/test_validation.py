"""Contract rules (streams/domain/validation.py) and CloudEvents JSON (cloudevents.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.domain.cloudevents import (
    from_cloudevent,
    from_json,
    parse_time,
    to_cloudevent,
    to_json,
)
from streams.domain.meters import Aggregation, Meter, MeterIndex
from streams.domain.rejections import Reason, Rejection
from streams.domain.usage import UsageEvent
from streams.domain.validation import Limits, approx_size, check_event, check_quantity

NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
LIMITS = Limits()
US = timedelta(microseconds=1)


def make_event(**changes: Any) -> UsageEvent:
    event = UsageEvent(
        id="evt-1",
        source="api-gateway/eu-west-1",
        type="ai.tokens",
        subject="ws-42",
        time=NOW - timedelta(minutes=5),
        values={"tokens": Decimal("120")},
        dimensions={"model": "gpt-x"},
    )
    return event._replace(**changes)


def cloudevent(**changes: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "specversion": "1.0",
        "id": "evt-1",
        "source": "api-gateway/eu-west-1",
        "type": "ai.tokens",
        "subject": "ws-42",
        "time": "2025-01-15T11:55:00Z",
        "data": {"tokens": 120, "model": "gpt-x"},
    }
    obj.update(changes)
    return obj


def parse(obj: dict[str, Any] | str) -> UsageEvent | Rejection:
    return from_json(obj if isinstance(obj, str) else json.dumps(obj))


def rejected(result: UsageEvent | Rejection | None) -> Rejection:
    assert isinstance(result, Rejection), result
    return result


# -- check_event: required attributes --------------------------------------------------


def test_a_well_formed_event_passes() -> None:
    assert check_event(make_event(), NOW, LIMITS) is None


@pytest.mark.parametrize("name", ["id", "source", "type", "subject"])
def test_empty_attribute_is_missing_field(name: str) -> None:
    rejection = rejected(check_event(make_event(**{name: ""}), NOW, LIMITS))

    assert rejection.reason is Reason.MISSING_FIELD
    assert rejection.detail == f"{name} is empty"
    assert rejection.event_id == (None if name == "id" else "evt-1")
    assert rejection.subject == (None if name == "subject" else "ws-42")


def test_rejection_names_the_event_and_subject() -> None:
    rejection = rejected(check_event(make_event(values={"tokens": Decimal(-1)}), NOW, LIMITS))

    assert (rejection.event_id, rejection.subject) == ("evt-1", "ws-42")


# -- check_event: time ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("time", "ok"),
    [
        (NOW - LIMITS.max_age, True),
        (NOW - LIMITS.max_age - US, False),
        (NOW + LIMITS.max_skew, True),
        (NOW + LIMITS.max_skew + US, False),
        (NOW, True),
    ],
    ids=["oldest", "too-old", "newest", "too-new", "now"],
)
def test_time_window_is_inclusive(time: datetime, ok: bool) -> None:
    result = check_event(make_event(time=time), NOW, LIMITS)

    if ok:
        assert result is None
    else:
        assert rejected(result).reason is Reason.TIMESTAMP_OUT_OF_RANGE


def test_time_window_follows_the_limits() -> None:
    limits = Limits(max_age=timedelta(hours=2), max_skew=timedelta(seconds=5))

    assert check_event(make_event(time=NOW - timedelta(hours=2)), NOW, limits) is None
    assert check_event(make_event(time=NOW + timedelta(seconds=5)), NOW, limits) is None
    too_old = check_event(make_event(time=NOW - timedelta(hours=2) - US), NOW, limits)
    too_new = check_event(make_event(time=NOW + timedelta(seconds=5) + US), NOW, limits)
    assert rejected(too_old).reason is Reason.TIMESTAMP_OUT_OF_RANGE
    assert rejected(too_new).reason is Reason.TIMESTAMP_OUT_OF_RANGE


def test_time_window_compares_instants_not_wall_clocks() -> None:
    tokyo = timezone(timedelta(hours=9))
    at_oldest = (NOW - LIMITS.max_age).astimezone(tokyo)

    assert check_event(make_event(time=at_oldest), NOW, LIMITS) is None
    assert rejected(check_event(make_event(time=at_oldest - US), NOW, LIMITS)).reason is (
        Reason.TIMESTAMP_OUT_OF_RANGE
    )


def test_naive_time_is_invalid() -> None:
    rejection = rejected(check_event(make_event(time=NOW.replace(tzinfo=None)), NOW, LIMITS))

    assert rejection.reason is Reason.INVALID_FIELD
    assert "time zone" in rejection.detail


# -- check_quantity ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        Decimal(0),
        Decimal("-0"),
        0,
        7,
        2.5,
        Decimal("0.000000001"),
        Decimal("123.123456789"),
        Decimal("1.50000000000000"),
        Decimal("9999999999999999999.999999999"),
        10**19 - 1,
    ],
)
def test_quantity_accepted(value: object) -> None:
    assert check_quantity("q", value) is None


@pytest.mark.parametrize("value", [Decimal(-1), -1, -0.5, Decimal("-0.000000001")])
def test_negative_quantity(value: object) -> None:
    rejection = rejected(check_quantity("q", value))

    assert rejection.reason is Reason.NEGATIVE_VALUE
    assert rejection.detail.startswith("data.q is negative")


@pytest.mark.parametrize(
    "value",
    [
        Decimal("NaN"),
        Decimal("sNaN"),
        Decimal("Infinity"),
        Decimal("-Infinity"),
        float("nan"),
        float("inf"),
        float("-inf"),
    ],
)
def test_non_finite_quantity(value: object) -> None:
    rejection = rejected(check_quantity("q", value))

    assert rejection.reason is Reason.NON_NUMERIC_VALUE
    assert "not finite" in rejection.detail


@pytest.mark.parametrize("value", [True, False, "1", None, [1], {"a": 1}, b"1"])
def test_non_number_quantity(value: object) -> None:
    rejection = rejected(check_quantity("q", value))

    assert rejection.reason is Reason.NON_NUMERIC_VALUE
    assert "not a number" in rejection.detail


@pytest.mark.parametrize(
    "value", [10**29, Decimal("1E+29"), Decimal("100000000000000000000000000000.5"), 1e300]
)
def test_more_than_29_integer_digits_is_invalid(value: object) -> None:
    rejection = rejected(check_quantity("q", value))

    assert rejection.reason is Reason.INVALID_FIELD
    assert "10^29" in rejection.detail


@pytest.mark.parametrize("value", [Decimal("0.0000000001"), Decimal("1.1234567891"), 1e-10])
def test_more_than_9_decimals_is_invalid(value: object) -> None:
    rejection = rejected(check_quantity("q", value))

    assert rejection.reason is Reason.INVALID_FIELD
    assert "9 decimal places" in rejection.detail


@pytest.mark.parametrize(
    "value",
    [10**19, Decimal("1E+19"), 10**29 - 1, Decimal("99999999999999999999999999999.999999999")],
)
def test_quantity_with_up_to_29_integer_digits_is_accepted(value: object) -> None:
    assert check_quantity("q", value) is None


# -- check_event: size and shape ------------------------------------------------------------


def test_approx_size_counts_attributes_and_properties() -> None:
    event = make_event(
        id="ab", source="c", type="d", subject="e", values={"v": Decimal(1)}, dimensions={"k": "vv"}
    )

    assert approx_size(event) == (2 + 1 + 1 + 1 + 8) + (1 + 17) + (1 + 2 + 2)


def test_event_of_exactly_the_size_limit_passes_and_one_byte_more_does_not() -> None:
    event = make_event(dimensions={"note": "x" * 500})
    size = approx_size(event)

    assert check_event(event, NOW, Limits(max_event_bytes=size)) is None
    rejection = rejected(check_event(event, NOW, Limits(max_event_bytes=size - 1)))
    assert rejection.reason is Reason.OVERSIZED_PAYLOAD
    assert str(size) in rejection.detail


def test_default_limit_rejects_a_huge_dimension() -> None:
    event = make_event(dimensions={"blob": "x" * LIMITS.max_event_bytes})

    assert rejected(check_event(event, NOW, LIMITS)).reason is Reason.OVERSIZED_PAYLOAD


@pytest.mark.parametrize(("n_values", "n_dimensions"), [(3, 0), (0, 3), (1, 2)])
def test_properties_limit_counts_values_and_dimensions(n_values: int, n_dimensions: int) -> None:
    limits = Limits(max_properties=3)
    values = {f"v{i}": Decimal(i) for i in range(n_values)}
    dimensions = {f"d{i}": "x" for i in range(n_dimensions)}

    assert check_event(make_event(values=values, dimensions=dimensions), NOW, limits) is None
    one_more = make_event(values=values, dimensions={**dimensions, "extra": "x"})
    rejection = rejected(check_event(one_more, NOW, limits))
    assert rejection.reason is Reason.OVERSIZED_PAYLOAD
    assert "more than 3 properties" in rejection.detail


def test_default_properties_limit_is_64() -> None:
    values = {f"v{i}": Decimal(1) for i in range(32)}

    assert (
        check_event(
            make_event(values=values, dimensions={f"d{i}": "x" for i in range(32)}), NOW, LIMITS
        )
        is None
    )
    too_many = make_event(values=values, dimensions={f"d{i}": "x" for i in range(33)})
    assert rejected(check_event(too_many, NOW, LIMITS)).reason is Reason.OVERSIZED_PAYLOAD


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (Decimal(-3), Reason.NEGATIVE_VALUE),
        (Decimal("NaN"), Reason.NON_NUMERIC_VALUE),
        (Decimal("Infinity"), Reason.NON_NUMERIC_VALUE),
        (Decimal("0.0000000001"), Reason.INVALID_FIELD),
        (Decimal("1E+29"), Reason.INVALID_FIELD),
    ],
)
def test_event_with_a_bad_value_names_the_property(value: Decimal, reason: Reason) -> None:
    event = make_event(values={"tokens": Decimal(1), "cost": value})
    rejection = rejected(check_event(event, NOW, LIMITS))

    assert rejection.reason is reason
    assert rejection.detail.startswith("data.cost ")


def test_value_and_dimension_with_the_same_name_is_invalid() -> None:
    event = make_event(
        values={"b": Decimal(1), "a": Decimal(2)}, dimensions={"b": "x", "a": "y", "c": "z"}
    )
    rejection = rejected(check_event(event, NOW, LIMITS))

    assert rejection.reason is Reason.INVALID_FIELD
    assert rejection.detail == "data.a is both value and dimension"


# -- check_event: meters -----------------------------------------------------------------------

METERS = MeterIndex.of(
    [
        Meter("ai_tokens", "ai.tokens", Aggregation.SUM, "tokens", ("model",)),
        Meter("ai_cost", "ai.tokens", Aggregation.MAX, "cost"),
        Meter("api_calls", "api.calls", Aggregation.COUNT),
    ]
)


def test_event_feeding_its_meters_passes() -> None:
    event = make_event(values={"tokens": Decimal(1), "cost": Decimal(2)})

    assert check_event(event, NOW, LIMITS, METERS) is None
    assert check_event(make_event(type="api.calls", values={}), NOW, LIMITS, METERS) is None


def test_event_type_no_meter_reads_is_unknown_meter() -> None:
    rejection = rejected(check_event(make_event(type="gpu.minutes"), NOW, LIMITS, METERS))

    assert rejection.reason is Reason.UNKNOWN_METER
    assert "gpu.minutes" in rejection.detail
    assert rejection.event_id == "evt-1"


def test_meter_property_sent_as_a_string_is_non_numeric() -> None:
    event = make_event(values={"tokens": Decimal(1)}, dimensions={"cost": "cheap"})
    rejection = rejected(check_event(event, NOW, LIMITS, METERS))

    assert rejection.reason is Reason.NON_NUMERIC_VALUE
    assert rejection.detail.startswith("data.cost ")


def test_meter_property_absent_is_missing_field() -> None:
    rejection = rejected(check_event(make_event(), NOW, LIMITS, METERS))

    assert rejection.reason is Reason.MISSING_FIELD
    assert rejection.detail == "data.cost is missing"


def test_contract_rules_come_before_meter_rules() -> None:
    event = make_event(type="gpu.minutes", values={"minutes": Decimal(-1)})

    assert rejected(check_event(event, NOW, LIMITS, METERS)).reason is Reason.NEGATIVE_VALUE


# -- CloudEvents JSON -> UsageEvent ---------------------------------------------------------


def test_cloudevent_maps_onto_the_contract() -> None:
    obj = cloudevent(
        dataschema="https://schemas.example/t.json",
        data={"tokens": 120, "cost": 0.25, "model": "gpt-x", "direction": "in"},
    )

    assert parse(obj) == UsageEvent(
        id="evt-1",
        source="api-gateway/eu-west-1",
        type="ai.tokens",
        subject="ws-42",
        time=datetime(2025, 1, 15, 11, 55, tzinfo=UTC),
        values={"tokens": Decimal(120), "cost": Decimal("0.25")},
        dimensions={"model": "gpt-x", "direction": "in"},
        dataschema="https://schemas.example/t.json",
        specversion="1.0",
    )


@pytest.mark.parametrize("name", ["id", "source", "type", "subject", "time"])
@pytest.mark.parametrize("how", ["absent", "empty", "null"])
def test_missing_required_attribute(name: str, how: str) -> None:
    obj = cloudevent()
    if how == "absent":
        del obj[name]
    else:
        obj[name] = "" if how == "empty" else None

    rejection = rejected(parse(obj))

    assert rejection.reason is Reason.MISSING_FIELD
    assert rejection.detail == f"{name} is missing"
    # The attribute that is missing cannot name the event (it is None or "")
    assert (rejection.event_id or None) == (None if name == "id" else "evt-1")
    assert (rejection.subject or None) == (None if name == "subject" else "ws-42")


@pytest.mark.parametrize("name", ["id", "source", "type", "subject"])
@pytest.mark.parametrize("value", [5, 1.5, True, ["x"], {"x": "y"}])
def test_attribute_of_the_wrong_type_is_invalid(name: str, value: object) -> None:
    rejection = rejected(parse(cloudevent(**{name: value})))

    assert rejection.reason is Reason.INVALID_FIELD
    assert rejection.detail == f"{name} must be a string"


@pytest.mark.parametrize("value", [1736942100, ["2025-01-15T11:55:00Z"], {"t": 1}, True])
def test_time_that_is_not_a_string_is_invalid(value: object) -> None:
    rejection = rejected(parse(cloudevent(time=value)))

    assert rejection.reason is Reason.INVALID_FIELD
    assert "RFC 3339" in rejection.detail


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2025-01-15T11:55:00Z", datetime(2025, 1, 15, 11, 55, tzinfo=UTC)),
        ("2025-01-15T11:55:00+00:00", datetime(2025, 1, 15, 11, 55, tzinfo=UTC)),
        ("2025-01-15T14:25:00+02:30", datetime(2025, 1, 15, 11, 55, tzinfo=UTC)),
        ("2025-01-15T06:55:00-05:00", datetime(2025, 1, 15, 11, 55, tzinfo=UTC)),
        ("2025-01-16T00:55:00.000001+13:00", datetime(2025, 1, 15, 11, 55, 0, 1, tzinfo=UTC)),
    ],
)
def test_time_with_an_offset_is_converted_to_utc(text: str, utc: datetime) -> None:
    parsed = parse_time(text)

    assert parsed == utc
    assert isinstance(parsed, datetime) and parsed.tzinfo is UTC


@pytest.mark.parametrize("text", ["2025-01-15T11:55:00", "2025-01-15T11:55:00.5", "2025-01-15"])
def test_time_without_an_offset_is_invalid(text: str) -> None:
    rejection = rejected(parse(cloudevent(time=text)))

    assert rejection.reason is Reason.INVALID_FIELD
    assert "no UTC offset" in rejection.detail


@pytest.mark.parametrize("text", ["yesterday", "2025-13-01T00:00:00Z", "15/01/2025 11:55"])
def test_time_that_is_not_rfc3339_is_invalid(text: str) -> None:
    rejection = rejected(parse(cloudevent(time=text)))

    assert rejection.reason is Reason.INVALID_FIELD
    assert "not RFC 3339" in rejection.detail


@pytest.mark.parametrize("data", [[1, 2], "tokens=1", 5, True])
def test_data_that_is_not_an_object_is_invalid(data: object) -> None:
    rejection = rejected(parse(cloudevent(data=data)))

    assert rejection.reason is Reason.INVALID_FIELD
    assert rejection.detail == "data must be a JSON object"


def test_absent_data_is_an_event_without_properties() -> None:
    obj = cloudevent()
    del obj["data"]

    event = parse(obj)

    assert isinstance(event, UsageEvent)
    assert (event.values, event.dimensions) == ({}, {})


@pytest.mark.parametrize("value", [{"n": 1}, [1], None, True, False])
def test_data_value_that_is_neither_number_nor_string_is_non_numeric(value: object) -> None:
    rejection = rejected(parse(cloudevent(data={"tokens": 1, "nested": value})))

    assert rejection.reason is Reason.NON_NUMERIC_VALUE
    assert rejection.detail.startswith("data.nested ")
    assert rejection.event_id == "evt-1"


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_json_numbers_are_non_numeric(literal: str) -> None:
    raw = json.dumps(cloudevent(data={"tokens": 0})).replace('"tokens": 0', f'"tokens": {literal}')

    assert rejected(from_json(raw)).reason is Reason.NON_NUMERIC_VALUE


def test_negative_json_number_is_negative_value() -> None:
    assert rejected(parse(cloudevent(data={"tokens": -2}))).reason is Reason.NEGATIVE_VALUE


def with_quantity(literal: str) -> str:
    """A CloudEvent whose data.q is the JSON number ``literal``, written verbatim."""
    return json.dumps(cloudevent(data={})).replace('"data": {}', f'"data": {{"q": {literal}}}')


@pytest.mark.parametrize(
    ("literal", "exact"),
    [
        ("0.1", "0.1"),
        ("1e-9", "1E-9"),
        ("123456789.123456789", "123456789.123456789"),
        ("42", "42"),
        ("2.50", "2.50"),
    ],
)
def test_json_numbers_stay_exact_decimals(literal: str, exact: str) -> None:
    event = from_json(with_quantity(literal))

    assert isinstance(event, UsageEvent)
    assert isinstance(event.values["q"], Decimal)
    assert str(event.values["q"]) == exact


def test_json_number_is_not_rounded_through_float() -> None:
    """17 decimals stay 17 decimals, so the 9-decimal rule rejects it instead of rounding."""
    rejection = rejected(from_json(with_quantity("0.30000000000000004")))

    assert rejection.reason is Reason.INVALID_FIELD


def test_strings_are_dimensions_and_numbers_are_values() -> None:
    event = parse(cloudevent(data={"tokens": 3, "model": "gpt-x", "count": "3"}))

    assert isinstance(event, UsageEvent)
    assert event.values == {"tokens": Decimal(3)}
    assert event.dimensions == {"model": "gpt-x", "count": "3"}


def test_optional_attributes() -> None:
    obj = cloudevent()
    del obj["specversion"]
    defaulted = parse(obj)
    odd = parse(cloudevent(dataschema=5))

    assert isinstance(defaulted, UsageEvent) and isinstance(odd, UsageEvent)
    assert (defaulted.dataschema, defaulted.specversion) == (None, "1.0")
    assert odd.dataschema is None


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"[1]", b'"event"', b"null", b'{"id": "\xff"}', "{'id': 'x'}"],
)
def test_payload_that_is_not_a_json_object_is_malformed(raw: str | bytes) -> None:
    rejection = rejected(from_json(raw))

    assert rejection.reason is Reason.MALFORMED_PAYLOAD
    assert rejection.event_id is None


def test_from_cloudevent_takes_a_parsed_object() -> None:
    assert isinstance(from_cloudevent(cloudevent()), UsageEvent)


def test_json_quantity_with_20_integer_digits_is_accepted() -> None:
    event = parse(cloudevent(data={"tokens": 10**19}))

    assert isinstance(event, UsageEvent)
    assert event.values["tokens"] == 10**19


# -- UsageEvent -> CloudEvents JSON --------------------------------------------------------------


def test_to_cloudevent_writes_utc_z_time_and_flat_data() -> None:
    event = make_event(
        time=datetime(2025, 1, 15, 14, 25, 0, 500, tzinfo=timezone(timedelta(hours=2, minutes=30))),
        values={"tokens": Decimal("120.000000000"), "cost": Decimal("0.25")},
        dataschema="urn:x",
    )

    obj = to_cloudevent(event)

    assert obj["time"] == "2025-01-15T11:55:00.000500Z"
    assert obj["data"] == {"tokens": 120, "cost": Decimal("0.25"), "model": "gpt-x"}
    assert type(obj["data"]["tokens"]) is int
    assert obj["dataschema"] == "urn:x"
    assert "dataschema" not in to_cloudevent(make_event())


def test_to_json_is_one_compact_line() -> None:
    line = to_json(make_event(values={"cost": Decimal("0.250")}))

    assert "\n" not in line and ", " not in line
    assert '"cost":0.25' in line


names = st.text(min_size=1, max_size=8)


@st.composite
def exact_quantities(draw: st.DrawFn) -> Decimal:
    """Non-negative, at most 9 decimals and 15 significant digits."""
    scale = draw(st.integers(0, 9))
    return Decimal(f"{draw(st.integers(0, 10**15 - 1))}E-{scale}")


@st.composite
def valid_events(draw: st.DrawFn) -> UsageEvent:
    values = draw(st.dictionaries(names, exact_quantities(), max_size=4))
    dimensions = draw(
        st.dictionaries(names.filter(lambda n: n not in values), st.text(), max_size=4)
    )
    return UsageEvent(
        id=draw(names),
        source=draw(names),
        type=draw(names),
        subject=draw(names),
        time=draw(
            st.datetimes(
                min_value=datetime(1970, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive by API
                max_value=datetime(2200, 1, 1),  # noqa: DTZ001
                timezones=st.builds(
                    timezone, st.timedeltas(timedelta(hours=-23), timedelta(hours=23))
                ),
            )
        ),
        values=values,
        dimensions=dimensions,
        dataschema=draw(st.none() | names),
        specversion="1.0",  # the only version billed
    )


@settings(max_examples=100, deadline=None)
@given(event=valid_events())
def test_to_json_from_json_round_trip(event: UsageEvent) -> None:
    parsed = from_json(to_json(event))

    assert parsed == event
    assert isinstance(parsed, UsageEvent)
    assert parsed.time.tzinfo is UTC


@pytest.mark.parametrize(
    "value", ["1234567890.123456789", "98765432109.87654321", "1000000000000000000.5"]
)
def test_to_json_writes_quantities_exactly(value: str) -> None:
    event = make_event(values={"q": Decimal(value)})

    assert f'"q":{value}' in to_json(event)
    assert from_json(to_json(event)) == event


# -- the JSON itself: one meaning, one version, its own bytes ------------------------------


def test_a_key_given_twice_is_refused_wherever_it_is() -> None:
    top = '{"specversion":"1.0","id":"a","id":"b","source":"s","type":"t","subject":"x","time":"2025-01-15T11:55:00Z"}'
    nested = json.dumps(cloudevent()).replace('"tokens": 120', '"tokens": 120, "tokens": 5')
    for text in (top, nested):
        problem = rejected(parse(text))
        assert problem.reason is Reason.MALFORMED_PAYLOAD
        assert "duplicate key" in problem.detail
    assert isinstance(parse(cloudevent()), UsageEvent)


@pytest.mark.parametrize("version", ["0.3", "1.0.2", "1.1", "", 1.0, None])
def test_only_cloudevents_1_0_is_billed(version: object) -> None:
    problem = rejected(parse(cloudevent(specversion=version)))
    assert problem.reason is Reason.INVALID_FIELD
    assert "specversion" in problem.detail and problem.event_id == "evt-1"


def test_an_event_without_specversion_is_read_as_1_0() -> None:
    obj = cloudevent()
    del obj["specversion"]
    event = parse(obj)
    assert isinstance(event, UsageEvent) and event.specversion == "1.0"


def test_bytes_that_are_not_utf8_are_refused_not_repaired() -> None:
    raw = json.dumps(cloudevent()).encode().replace(b"gpt-x", b"gpt-\xff")
    problem = rejected(from_json(raw))
    assert problem.reason is Reason.MALFORMED_PAYLOAD
    assert "not UTF-8" in problem.detail
