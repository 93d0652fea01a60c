"""``GET /api/v1/meters/{meter}/query``: OpenMeter's parameters, Railyard's exact views.

Pure: the clock reading and the pipeline's window size are passed in. Usage is kept
in event-time windows of ``RAILYARD_WINDOW_SIZE`` (late events at their own time), so
an answer is exact only for spans made of whole windows: ``from``, ``to`` and every
bucket boundary (in ``windowTimeZone``) must fall on a window boundary, or the query is
refused rather than answered approximately. Each bucket is one ``usage_quantity(from,
to)``, the view invoices bill from; groups a query does not ask for are added up, as an
invoice line adds a meter's groups (``docs/rating.md``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal, localcontext
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connectors.api.problems import Problem
from connectors.clickhouse.sql import literal
from streams.domain.meters import Meter
from streams.domain.windows import WindowSize

SIZES = {"MINUTE": timedelta(minutes=1), "HOUR": timedelta(hours=1), "DAY": timedelta(days=1)}
MAX_BUCKETS = 1000
"""Most buckets one query may ask for (a month of hours is 744)."""
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CUSTOMER = "customer_id"
EXACT = Context(prec=80)
"""Enough digits to add up any number of Decimal(38, 9) quantities without rounding
(the default context keeps 28, and would round a large one)."""


@dataclass(frozen=True, slots=True)
class MeterQuery:
    meter: Meter
    start: datetime
    end: datetime
    window_size: str | None
    time_zone: str
    buckets: tuple[tuple[datetime, datetime], ...]
    customers: tuple[str, ...]
    group_by: tuple[str, ...]
    """The meter's group keys asked for (``customer_id`` is always a row's own)."""
    from_given: bool


def _instant(name: str, text: str | None) -> datetime | Problem | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        return _bad(f"{name} is not an RFC 3339 date-time: {text!r:.60}")
    if value.tzinfo is None:
        return _bad(f"{name} has no UTC offset: {text!r:.60}")
    return value.astimezone(UTC)


def _bad(detail: str) -> Problem:
    return Problem(400, "invalid-query", detail)


def _aligned(t: datetime, window: timedelta) -> bool:
    return (t - EPOCH) % window == timedelta(0)


def _ceil(t: datetime, window: timedelta) -> datetime:
    rest = (t - EPOCH) % window
    return t if not rest else t + (window - rest)


def _local_floor(t: datetime, size: str, zone: ZoneInfo) -> datetime:
    local = t.astimezone(zone)
    if size == "DAY":
        local = local.replace(hour=0, minute=0, second=0, microsecond=0)
    elif size == "HOUR":
        local = local.replace(minute=0, second=0, microsecond=0)
    else:
        local = local.replace(second=0, microsecond=0)
    return local.astimezone(UTC)


def _next_boundary(t: datetime, size: str, zone: ZoneInfo) -> datetime:
    """The next bucket start after ``t`` (a bucket start): a local day may be 23 or 25
    hours across a daylight-saving change; hours and minutes are counted in UTC."""
    if size != "DAY":
        return t + SIZES[size]
    local = t.astimezone(zone).replace(tzinfo=None)
    return (local + timedelta(days=1)).replace(tzinfo=zone).astimezone(UTC)


def buckets(
    start: datetime, end: datetime, size: str | None, zone: ZoneInfo
) -> list[tuple[datetime, datetime]]:
    """[start, end) cut at ``size`` boundaries in ``zone``, the first and last clipped."""
    if size is None:
        return [(start, end)]
    out = []
    lower = start
    boundary = _local_floor(start, size, zone)
    while lower < end:
        boundary = _next_boundary(boundary, size, zone)
        upper = min(boundary, end)
        if upper > lower:
            out.append((lower, upper))
            lower = upper
        if len(out) > MAX_BUCKETS:
            break
    return out


def parse_query(
    meter: Meter,
    params: Mapping[str, Sequence[str]],
    pipeline_window: WindowSize,
    now: datetime,
) -> MeterQuery | Problem:
    """The query ``params`` ask for, or the first reason it cannot be answered exactly."""

    def one(name: str) -> str | None:
        values = params.get(name) or []
        return values[-1] if values else None

    window = pipeline_window.duration
    unit = pipeline_window.value
    if params.get("subject"):
        return _bad(
            "filtering by subject is not supported: Railyard meters usage per customer"
            " (its catalog maps subjects to customers); use filterCustomerId"
        )
    if params.get("filterGroupBy") or params.get("advancedMeterGroupByFilters"):
        return _bad("group-by filters are not supported yet: use groupBy and filter the rows")
    size = one("windowSize")
    if size is not None:
        size = size.upper()
        if size not in SIZES:
            return _bad(f"windowSize must be one of {', '.join(SIZES)}, not {size!r:.20}")
        if SIZES[size] < window:
            return _bad(
                f"windowSize {size} is finer than the {unit} windows Railyard keeps usage in"
                " (RAILYARD_WINDOW_SIZE)"
            )
    zone_name = one("windowTimeZone") or "UTC"
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        return _bad(f"windowTimeZone {zone_name!r:.60} is not an IANA time zone")
    start = _instant("from", one("from"))
    end = _instant("to", one("to"))
    for value in (start, end):
        if isinstance(value, Problem):
            return value
    assert not isinstance(start, Problem) and not isinstance(end, Problem)
    if size is not None and start is None:
        return _bad("from is required with windowSize")
    end = end if end is not None else _ceil(now, window)
    first = start if start is not None else EPOCH
    if first >= end:
        return _bad("from must be before to")
    for name, value in (("from", first), ("to", end)):
        if not _aligned(value, window):
            return _bad(
                f"{name} {value.isoformat()} is not on a {unit} boundary: Railyard keeps usage"
                f" in {unit} windows (RAILYARD_WINDOW_SIZE), so only whole windows are exact"
            )
    cut = buckets(first, end, size, zone)
    if len(cut) > MAX_BUCKETS:
        return _bad(f"the query spans more than {MAX_BUCKETS} windows; ask a shorter span")
    for lower, _ in cut:
        if not _aligned(lower, window):
            return _bad(
                f"windowTimeZone {zone_name} puts a window start at {lower.isoformat()}, not on"
                f" a {unit} boundary: Railyard's {unit} windows cannot be split exactly"
            )
    group_by: list[str] = []
    for key in params.get("groupBy") or []:
        if key == "subject":
            return _bad("groupBy=subject is not supported: rows are per customer (customerId)")
        if key != CUSTOMER and key not in meter.group_by:
            keys = ", ".join([*meter.group_by, CUSTOMER])
            return _bad(f"meter {meter.key} cannot group by {key!r:.60}; it groups by {keys}")
        if key != CUSTOMER and key not in group_by:
            group_by.append(key)
    customers = tuple(dict.fromkeys(params.get("filterCustomerId") or []))
    if len(customers) > 100:
        return _bad("filterCustomerId takes at most 100 customers")
    return MeterQuery(
        meter,
        first,
        end,
        size,
        zone_name,
        tuple(cut),
        customers,
        tuple(group_by),
        start is not None,
    )


def _timestamp(t: datetime) -> str:
    return literal(t.strftime("%Y-%m-%d %H:%M:%S.%f"))


def to_sql(query: MeterQuery) -> str:
    """One ``usage_quantity`` per bucket, in one statement; quantities as text (exact)."""
    where = f"meter = {literal(query.meter.key)}"
    if query.customers:
        where += f" AND customer IN ({', '.join(literal(c) for c in query.customers)})"
    parts = [
        f"SELECT {i} AS bucket, customer, group_by, group_values, toString(quantity) AS q"
        f" FROM usage_quantity(from = {_timestamp(lower)}, to = {_timestamp(upper)})"
        f" WHERE {where} AND quantity IS NOT NULL"
        for i, (lower, upper) in enumerate(query.buckets)
    ]
    return " UNION ALL ".join(parts) + " ORDER BY bucket, customer"


def _rfc3339(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Row:
    value: Decimal
    window_start: datetime
    window_end: datetime
    customer: str
    group_by: tuple[tuple[str, str | None], ...]


def fold(query: MeterQuery, rows: Sequence[Sequence[Any]]) -> list[Row]:
    """Add up, per bucket, customer and asked group values, the groups' exact quantities."""
    totals: dict[tuple[int, str, tuple[tuple[str, str | None], ...]], Decimal] = {}
    with localcontext(EXACT):
        for bucket, customer, keys, values, quantity in rows:
            groups = dict(zip(keys, values, strict=True))
            asked = tuple((k, groups.get(k)) for k in query.group_by)
            slot = (int(bucket), str(customer), asked)
            totals[slot] = totals.get(slot, Decimal(0)) + Decimal(quantity)
    return [
        Row(total, *query.buckets[bucket], customer, asked)
        for (bucket, customer, asked), total in sorted(
            totals.items(), key=lambda kv: (kv[0][0], kv[0][1], [v or "" for _, v in kv[0][2]])
        )
    ]


def result_json(query: MeterQuery, rows: Sequence[Row]) -> bytes:
    """OpenMeter's ``MeterQueryResult``, each ``value`` a JSON number with every digit of
    the Decimal(38, 9) quantity (``json`` would go through a float)."""
    exact: dict[str, str] = {}
    data = []
    for row in rows:
        token = f"\x00q{len(exact)}\x00"
        with localcontext(EXACT):
            exact[json.dumps(token)] = format(row.value.normalize(), "f")
        data.append(
            {
                "value": token,
                "windowStart": _rfc3339(row.window_start),
                "windowEnd": _rfc3339(row.window_end),
                "subject": None,
                "customerId": row.customer,
                "groupBy": dict(row.group_by),
            }
        )
    body: dict[str, Any] = {"from": _rfc3339(query.start), "to": _rfc3339(query.end)}
    if not query.from_given:
        body.pop("from")
    if query.window_size is not None:
        body["windowSize"] = query.window_size
    body["data"] = data
    text = json.dumps(body, separators=(",", ":"))
    for quoted, digits in exact.items():
        text = text.replace(quoted, digits, 1)
    return text.encode()


def meter_json(meter: Meter, seen_at: datetime) -> dict[str, Any]:
    """OpenMeter's ``Meter`` for a catalog meter: the key is both id and slug; a data
    property becomes a JSONPath; ``createdAt`` is when this process first saw the catalog."""
    out: dict[str, Any] = {
        "id": meter.key,
        "slug": meter.key,
        "name": meter.key,
        "description": meter.description or None,
        "aggregation": str(meter.aggregation),
        "eventType": meter.event_type,
        "groupBy": {k: f"$.{k}" for k in meter.group_by},
        "createdAt": _rfc3339(seen_at),
        "updatedAt": _rfc3339(seen_at),
    }
    if meter.value_property:
        out["valueProperty"] = f"$.{meter.value_property}"
    return out
