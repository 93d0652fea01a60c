"""The pure rules of ``GET /api/v1/meters/{meter}/query``: parameters, windows and time
zones over Railyard's event-time windows, the SQL, and OpenMeter's result shape."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from connectors.api.meter_query import (
    MAX_BUCKETS,
    MeterQuery,
    buckets,
    fold,
    meter_json,
    parse_query,
    result_json,
    to_sql,
)
from connectors.api.problems import Problem
from streams.domain.meters import Aggregation, Meter
from streams.domain.windows import WindowSize

METER = Meter("ai_tokens", "ai.tokens", Aggregation.SUM, "tokens", ("model", "direction"))
NOW = datetime(2026, 11, 20, 12, 34, tzinfo=UTC)
HOUR = WindowSize.HOUR


def parse(window: WindowSize = HOUR, **params: str | list[str]) -> MeterQuery | Problem:
    return parse_query(
        METER, {k: v if isinstance(v, list) else [v] for k, v in params.items()}, window, NOW
    )


def ok(window: WindowSize = HOUR, **params: str | list[str]) -> MeterQuery:
    parsed = parse(window, **params)
    assert isinstance(parsed, MeterQuery), parsed
    return parsed


def refused(window: WindowSize = HOUR, **params: str | list[str]) -> str:
    parsed = parse(window, **params)
    assert isinstance(parsed, Problem) and parsed.status == 400, parsed
    return parsed.detail


def test_no_parameters_is_everything_until_the_end_of_the_current_window() -> None:
    q = ok()
    assert q.start == datetime(1970, 1, 1, tzinfo=UTC) and not q.from_given
    assert q.end == datetime(2026, 11, 20, 13, 0, tzinfo=UTC)
    assert q.buckets == ((q.start, q.end),) and q.window_size is None
    assert q.customers == () and q.group_by == () and q.time_zone == "UTC"


def test_a_span_with_customers_and_groups() -> None:
    q = ok(
        **{
            "from": "2026-11-01T00:00:00Z",
            "to": "2026-11-02T00:00:00+00:00",
            "filterCustomerId": ["a", "b", "a"],
            "groupBy": ["model", "customer_id", "model"],
        }
    )
    assert q.customers == ("a", "b") and q.group_by == ("model",)
    assert q.buckets == ((datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC)),)


def test_days_in_a_time_zone_with_daylight_saving() -> None:
    q = ok(
        **{
            "from": "2026-10-23T22:00:00Z",  # midnight in Berlin, summer time
            "to": "2026-10-26T23:00:00Z",  # midnight in Berlin, winter time
            "windowSize": "DAY",
            "windowTimeZone": "Europe/Berlin",
        }
    )
    lengths = [upper - lower for lower, upper in q.buckets]
    assert lengths == [timedelta(hours=24), timedelta(hours=25), timedelta(hours=24)]
    assert q.buckets[2][0] == datetime(2026, 10, 25, 23, 0, tzinfo=UTC)  # the 25th had 25 h


def test_first_and_last_buckets_are_clipped_to_the_span() -> None:
    q = ok(**{"from": "2026-11-01T05:00:00Z", "to": "2026-11-03T07:00:00Z", "windowSize": "DAY"})
    assert [(lo.day, lo.hour, hi.day, hi.hour) for lo, hi in q.buckets] == [
        (1, 5, 2, 0),
        (2, 0, 3, 0),
        (3, 0, 3, 7),
    ]


def test_hours_and_minutes() -> None:
    q = ok(**{"from": "2026-11-01T00:00:00Z", "to": "2026-11-01T03:00:00Z", "windowSize": "hour"})
    assert len(q.buckets) == 3 and q.window_size == "HOUR"
    q = ok(
        WindowSize.MINUTE,
        **{"from": "2026-11-01T00:00:00Z", "to": "2026-11-01T00:05:00Z", "windowSize": "MINUTE"},
    )
    assert len(q.buckets) == 5


@pytest.mark.parametrize(
    ("window", "params", "words"),
    [
        (HOUR, {"subject": "s-1"}, "filtering by subject is not supported"),
        (HOUR, {"groupBy": "subject"}, "groupBy=subject"),
        (HOUR, {"groupBy": "region"}, "cannot group by 'region'; it groups by model, direction"),
        (HOUR, {"filterGroupBy[model]": "x", "filterGroupBy": "x"}, "group-by filters"),
        (HOUR, {"windowSize": "WEEK"}, "windowSize must be one of MINUTE, HOUR, DAY"),
        (HOUR, {"windowSize": "MONTH"}, "windowSize must be one of"),
        (HOUR, {"windowSize": "MINUTE", "from": "2026-11-01T00:00:00Z"}, "finer than the hour"),
        (WindowSize.DAY, {"windowSize": "HOUR", "from": "2026-11-01T00:00:00Z"}, "finer"),
        (HOUR, {"windowTimeZone": "Mars/Olympus"}, "not an IANA time zone"),
        (HOUR, {"windowTimeZone": "../etc"}, "not an IANA time zone"),
        (HOUR, {"from": "yesterday"}, "from is not an RFC 3339"),
        (HOUR, {"to": "2026-11-01T00:00:00"}, "to has no UTC offset"),
        (HOUR, {"windowSize": "DAY"}, "from is required with windowSize"),
        (HOUR, {"from": "2026-11-02T00:00:00Z", "to": "2026-11-01T00:00:00Z"}, "before to"),
        (HOUR, {"from": "2026-11-01T00:30:00Z"}, "not on a hour boundary"),
        (HOUR, {"from": "2026-11-01T00:00:00Z", "to": "2026-11-01T00:00:01Z"}, "to 2026"),
        (
            HOUR,
            {"from": "2026-11-01T00:00:00Z", "windowSize": "DAY", "windowTimeZone": "Asia/Kolkata"},
            "cannot be split exactly",
        ),
        (
            WindowSize.DAY,
            {"from": "2026-11-01T00:00:00Z", "windowSize": "DAY", "windowTimeZone": "Europe/Paris"},
            "cannot be split exactly",
        ),
        (
            WindowSize.MINUTE,
            {"from": "2026-11-01T00:00:00Z", "to": "2026-11-02T00:00:00Z", "windowSize": "MINUTE"},
            f"more than {MAX_BUCKETS} windows",
        ),
        (HOUR, {"filterCustomerId": [str(i) for i in range(101)]}, "at most 100"),
    ],
)
def test_what_cannot_be_answered_exactly_is_refused(
    window: WindowSize, params: dict[str, str | list[str]], words: str
) -> None:
    assert words in refused(window, **params)


def test_a_whole_hour_time_zone_is_fine_with_hour_windows() -> None:
    q = ok(
        **{
            "from": "2026-10-31T23:00:00Z",
            "to": "2026-11-02T23:00:00Z",
            "windowSize": "DAY",
            "windowTimeZone": "Europe/Paris",
        }
    )
    assert len(q.buckets) == 2


def test_half_hour_zone_with_minute_windows_is_exact() -> None:
    q = ok(
        WindowSize.MINUTE,
        **{
            "from": "2026-10-31T18:30:00Z",
            "to": "2026-11-01T18:30:00Z",
            "windowSize": "DAY",
            "windowTimeZone": "Asia/Kolkata",
        },
    )
    assert q.buckets == (
        (datetime(2026, 10, 31, 18, 30, tzinfo=UTC), datetime(2026, 11, 1, 18, 30, tzinfo=UTC)),
    )


def test_buckets_without_a_size_is_the_span() -> None:
    lo, hi = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    assert buckets(lo, hi, None, ZoneInfo("UTC")) == [(lo, hi)]


def test_the_sql_asks_usage_quantity_once_per_bucket() -> None:
    q = ok(
        **{
            "from": "2026-11-01T00:00:00Z",
            "to": "2026-11-03T00:00:00Z",
            "windowSize": "DAY",
            "filterCustomerId": ["o'brien"],
        }
    )
    sql = to_sql(q)
    assert sql.count("FROM usage_quantity(") == 2 and sql.count(" UNION ALL ") == 1
    assert (
        "usage_quantity(from = '2026-11-01 00:00:00.000000', to = '2026-11-02 00:00:00.000000')"
        in sql
    )
    assert "meter = 'ai_tokens' AND customer IN ('o\\'brien')" in sql
    assert sql.startswith("SELECT 0 AS bucket") and sql.endswith("ORDER BY bucket, customer")
    assert "customer IN" not in to_sql(ok())


ROWS = [
    [0, "acme", ["model", "direction"], ["gpt", "input"], "1.000000001"],
    [0, "acme", ["model", "direction"], ["gpt", "output"], "2"],
    [0, "acme", ["model", "direction"], ["claude", "input"], "4.5"],
    [0, "beta", ["model", "direction"], ["gpt", "input"], "8"],
    [1, "acme", ["model", "direction"], ["gpt", "input"], "16"],
]


def two_days(**params: str | list[str]) -> MeterQuery:
    return ok(
        **{"from": "2026-11-01T00:00:00Z", "to": "2026-11-03T00:00:00Z", "windowSize": "DAY"},
        **params,
    )


def test_groups_not_asked_for_are_added_as_an_invoice_line_adds_them() -> None:
    rows = fold(two_days(), ROWS)
    assert [(r.customer, r.value, r.window_start.day) for r in rows] == [
        ("acme", Decimal("7.500000001"), 1),
        ("beta", Decimal("8"), 1),
        ("acme", Decimal("16"), 2),
    ]
    by_model = fold(two_days(groupBy="model"), ROWS)
    assert [(r.customer, dict(r.group_by), r.value) for r in by_model] == [
        ("acme", {"model": "claude"}, Decimal("4.5")),
        ("acme", {"model": "gpt"}, Decimal("3.000000001")),
        ("beta", {"model": "gpt"}, Decimal("8")),
        ("acme", {"model": "gpt"}, Decimal("16")),
    ]


def test_a_row_without_the_group_key_reads_null() -> None:
    rows = fold(two_days(groupBy="model"), [[0, "acme", [], [], "3"]])
    assert dict(rows[0].group_by) == {"model": None}


def test_result_is_openmeters_shape_with_every_digit() -> None:
    q = two_days(groupBy=["model"])
    big = [
        [0, "acme", ["model"], ["gpt"], "12345678901234567890123456789.123456789"],
        [0, "acme", ["model"], ["gpt"], "0.000000001"],
    ]
    text = result_json(q, fold(q, big))
    assert b"12345678901234567890123456789.12345679," in text
    doc = json.loads(text, parse_float=Decimal)
    assert doc["from"] == "2026-11-01T00:00:00Z" and doc["to"] == "2026-11-03T00:00:00Z"
    assert doc["windowSize"] == "DAY"
    assert doc["data"] == [
        {
            "value": Decimal("12345678901234567890123456789.12345679"),
            "windowStart": "2026-11-01T00:00:00Z",
            "windowEnd": "2026-11-02T00:00:00Z",
            "subject": None,
            "customerId": "acme",
            "groupBy": {"model": "gpt"},
        }
    ]
    plain = json.loads(result_json(ok(), []))
    assert "from" not in plain and "windowSize" not in plain and plain["data"] == []
    whole = json.loads(result_json(q, fold(q, [[0, "a", [], [], "2.000000000"]])))
    assert whole["data"][0]["value"] == 2


def test_meter_as_openmeter_describes_one() -> None:
    seen = datetime(2026, 11, 1, tzinfo=UTC)
    doc = meter_json(METER, seen)
    assert doc["id"] == doc["slug"] == "ai_tokens"
    assert doc["aggregation"] == "SUM" and doc["eventType"] == "ai.tokens"
    assert doc["valueProperty"] == "$.tokens"
    assert doc["groupBy"] == {"model": "$.model", "direction": "$.direction"}
    assert doc["createdAt"] == "2026-11-01T00:00:00Z"
    count = meter_json(Meter("calls", "api.calls", Aggregation.COUNT), seen)
    assert "valueProperty" not in count and count["groupBy"] == {}
