"""Analyst views give the numbers the invoices bill (issue 14), on the real engine.

``usage_quantity(from, to)`` and ``usage_daily`` merge the newest revision of each
window with late usage by ClickHouse's exact functions. First on the engine alone:
window and late batches landed the way the sink lands them (the engine's Avro reader,
and the row path for version-1 windows and late usage) must read back as the rate
stage merges the same batches. Then against the real pipeline: a month of one meter
per aggregation, a subject moving mid-month, re-sends, and the second half produced
first so the first half arrives past the lateness bound; the views must equal the
aggregation over the raw events computed by hand (``test_billing_truth.by_hand``),
per period and per day.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest

from connectors.clickhouse.analyst import query
from connectors.clickhouse.metering_writers import LateWriter, WindowsWriter
from connectors.clickhouse.migrate import MIGRATIONS_DIR, apply_migrations, prepare_store
from connectors.kafka import topics
from connectors.kafka.admin import group_lag
from streams.agents.window import partial_fields
from streams.domain.accumulators import ACCUMULATORS
from streams.domain.billing_book import BillingBook
from streams.domain.dedup import event_digest
from streams.domain.meters import Aggregation, Meter
from streams.domain.partials import partial_of
from streams.domain.rating import BillingPeriod
from streams.domain.rating.inputs import WindowedUsage
from streams.domain.usage import UsageEvent
from streams.settings import Settings
from streams.wire.book import late_changes, window_changes
from streams.wire.container import container
from streams.wire.records import LATE, WINDOWS, WINDOWS_V1
from tests.integration.harness import Pipeline, railyard
from tests.integration.test_billing import settled
from tests.integration.test_billing_truth import (
    AGGREGATIONS,
    MOVE,
    by_hand,
    lines_of,
    month_of_events,
    owner,
    setup,
    wait_landed,
)
from tests.integration.test_ingest import publish

pytestmark = pytest.mark.integration

Key = tuple[str, str, tuple[str, ...]]
"""(customer, meter, group values)."""

# -- the engine alone ------------------------------------------------------------------------

DAY1 = datetime(2026, 11, 3, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
NOVEMBER = (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
HOUR = timedelta(hours=1)
METERS = {
    key: Meter(key, "probe", Aggregation(a), None if a == "COUNT" else "v", ("g",))
    for key, a in AGGREGATIONS.items()
}


class Message:
    """What a writer reads of a Kafka message."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload

    def value(self) -> bytes:
        return self.payload


Event = tuple[timedelta, int, str]
"""(offset into the day, digest number, value)."""


def window(meter: str, start: datetime, events: list[Event], group: str = "x") -> dict[str, Any]:
    """A version-2 update of the hour window at ``start`` holding ``events`` (offsets from
    ``start``), built as the window stage builds it (streams/agents/window.py)."""
    aggregation = METERS[meter].aggregation
    accumulator = ACCUMULATORS[aggregation]()
    for at, n, v in events:
        value = v if aggregation is Aggregation.UNIQUE_COUNT else Decimal(v)
        accumulator.add(value, start + at, n.to_bytes(16, "big"))
    return {
        "customer": "acme",
        "meter": meter,
        "aggregation": str(aggregation),
        "group_by": ["g"],
        "group": [group],
        "window_start": start,
        "window_end": start + HOUR,
        "value": accumulator.result(),
        "revision": len(events),
        "is_correction": False,
        **partial_fields(partial_of(aggregation, accumulator, len(events))),
    }


def window_v1(meter: str, start: datetime, value: str, revision: int) -> dict[str, Any]:
    """A version-1 update: the window's value alone."""
    return {
        "customer": "acme",
        "meter": meter,
        "aggregation": str(METERS[meter].aggregation),
        "group_by": ["g"],
        "group": ["x"],
        "window_start": start,
        "window_end": start + HOUR,
        "value": Decimal(value),
        "revision": revision,
        "is_correction": False,
    }


def late(meter: str, at: datetime, n: int, value: str) -> dict[str, Any]:
    hour = at.replace(minute=0, second=0, microsecond=0)
    return {
        "customer": "acme",
        "meter": meter,
        "aggregation": str(METERS[meter].aggregation),
        "group_by": ["g"],
        "group": ["x"],
        "window_start": hour,
        "event_time": at,
        "value": value,
        "digest": n.to_bytes(16, "big"),
        "watermark": at + 3 * HOUR,
        "reason": "window_closed",
    }


def land_avro(client: Any, writer: WindowsWriter, payloads: list[bytes]) -> None:
    """As the sink lands a batch: the bodies in one container, read by the engine."""
    parts: list[bytes | memoryview] = []
    for p in payloads:
        landed = writer.record(Message(p))  # type: ignore[arg-type]
        assert landed is not None, "a version-2 batch goes through the engine's Avro reader"
        parts.extend(landed[0])
    fd, path = tempfile.mkstemp(suffix=".avro")
    try:
        with os.fdopen(fd, "wb") as f:
            f.writelines(container(writer.schema, len(payloads), parts))
        source = f"file('{path}', 'Avro')"
        client.command(
            f"{writer.insert_sql(source)} SETTINGS schema_inference_use_cache_for_file = 0"
        )
    finally:
        os.unlink(path)


def land_rows(client: Any, writer: WindowsWriter | LateWriter, payloads: list[bytes]) -> None:
    """As the sink lands what the engine's reader does not take: decoded in Python."""
    rows = [list(r) for p in payloads for r in writer.rows(Message(p))]  # type: ignore[arg-type]
    client.insert(writer.table, rows, column_names=list(writer.columns))


def engine_batches() -> tuple[list[bytes], list[bytes], list[bytes], list[bytes]]:
    """Two days of one customer's usage: (version-2 window batches, an older revision of one
    of those windows, version-1 window batches, late usage batches)."""
    m, h10, h11 = timedelta(minutes=1), DAY1 + 10 * HOUR, DAY1 + 11 * HOUR
    v2 = [
        window("m_sum", h10, [(5 * m, 1, "1.5"), (20 * m, 2, "2.25")]),
        window("m_sum", h11, [(40 * m, 3, "3")]),
        window("m_sum", h10, [(7 * m, 4, "5")], group="y"),
        window("m_count", h10, [(5 * m, 1, "1"), (20 * m, 2, "1")]),
        window("m_count", h11, [(40 * m, 3, "1")]),
        window("m_min", h10, [(5 * m, 1, "5"), (20 * m, 2, "3")]),
        window("m_min", h11, [(40 * m, 3, "4")]),
        window("m_max", h10, [(5 * m, 1, "5"), (20 * m, 2, "3")]),
        window("m_max", h11, [(40 * m, 3, "4")]),
        # 1 and 2 units of 10^-9 over two windows: a mean of 1.5 units, rounded to even (2)
        window("m_avg", h10, [(5 * m, 1, "0.000000001")]),
        window("m_avg", h11, [(40 * m, 3, "0.000000002")]),
        # u1 in both windows, u2 again late, u4 only late: 4 users that day, not 2 + 2 + 2
        window("m_seats", h10, [(5 * m, 1, "u1"), (20 * m, 2, "u2"), (30 * m, 5, "u1")]),
        window("m_seats", h11, [(40 * m, 3, "u1"), (50 * m, 6, "u3")]),
        window("m_seats", h10, [(7 * m, 4, "u1")], group="y"),
        window("m_latest", h10, [(5 * m, 1, "7"), (20 * m, 2, "8")]),
        window("m_latest", h11, [(40 * m, 0x0F, "3")]),
        window("m_latest", DAY2 + 9 * HOUR, [(0 * m, 9, "1")]),
    ]
    older = [window("m_sum", h10, [(5 * m, 1, "1.5")])]  # revision 1, landed after revision 2
    v1 = [
        window_v1("m_sum", DAY2 + 8 * HOUR, "10", 2),
        window_v1("m_max", DAY2 + 8 * HOUR, "11", 1),
        # 4 units over 3 events, with 0 late the next day: the month's mean is 15 / 6 units,
        # 2.5, rounded to even (2); the day's 12 / 4 is 3
        window_v1("m_avg", DAY2 + 8 * HOUR, "0.000000004", 3),
        window_v1("m_seats", DAY2 + 8 * HOUR, "2", 2),  # two values, which ones unknown
    ]
    items = [
        late("m_sum", h10 + 30 * m, 20, "4.000000000"),
        late("m_count", h10 + 30 * m, 20, "1"),
        late("m_min", h10 + 30 * m, 20, "2.000000000"),
        late("m_max", h10 + 30 * m, 20, "9.000000000"),
        late("m_seats", h10 + 30 * m, 20, "u2"),
        late("m_seats", h11 + 10 * m, 21, "u4"),
        late("m_avg", DAY2 + 8 * HOUR + 30 * m, 22, "0E-9"),
        # the same instant as the hour's latest event, with a greater digest: it wins the day
        late("m_latest", h11 + 40 * m, 0x10, "6.000000000"),
    ]

    def batch(updates: list[dict[str, Any]]) -> list[bytes]:
        return [WINDOWS.encode({"updates": [u], "watermark": DAY2}) for u in updates]

    return (
        [WINDOWS.encode({"updates": v2[:9], "watermark": DAY2}), *batch(v2[9:])],
        batch(older),
        [WINDOWS_V1.encode({"updates": [u], "watermark": DAY2}) for u in v1],
        [LATE.encode({"items": items[:4]}), LATE.encode({"items": items[4:]})],
    )


def rate_stage_quantities(
    windows: Iterable[bytes], lates: Iterable[bytes], start: datetime, end: datetime
) -> dict[Key, Decimal]:
    """What the rate stage would bill for [start, end): the same batches through its own
    translation (streams/wire/book.py), billing book and usage measure."""
    book = BillingBook(timedelta(0))
    for payload in windows:
        book.fold_windows(window_changes(payload)[0])
    for payload in lates:
        book.fold_late(late_changes(payload))
    period = BillingPeriod(start, end)
    usage = WindowedUsage(book.windows_in("acme", period), book.late_in("acme", period), METERS)
    return {
        ("acme", key, group): q
        for key, meter in METERS.items()
        for group, q in usage.measure(meter, start, end).items()
    }


def quantities(client: Any, sql: str) -> dict[Key, Decimal]:
    return {
        (customer, meter, tuple(group)): Decimal(q)
        for customer, meter, group, q in client.query(sql).result_rows
    }


@pytest.fixture
def store(tmp_path: Path) -> Any:
    client = clickhouse_connect.get_client(dsn=f"chdb://{tmp_path / 'store'}")
    prepare_store(client)
    try:
        yield client
    finally:
        client.close()


def test_the_views_merge_windows_and_late_usage_as_the_rate_stage_does(store: Any) -> None:
    v2, older, v1, lates = engine_batches()
    land_avro(store, WindowsWriter(), v2)
    land_rows(store, WindowsWriter(), older + v1)  # an older revision never wins
    land_rows(store, LateWriter(), lates)
    windows = [*v2, *older, *v1]
    period = quantities(
        store,
        "SELECT customer, meter, group_values, toString(quantity) "
        "FROM usage_quantity(from = '2026-11-01', to = '2026-12-01')",
    )
    expected = rate_stage_quantities(windows, lates, *NOVEMBER)
    assert period == expected
    assert period[("acme", "m_avg", ("x",))] == Decimal("0.000000002"), "2.5 units rounds to 2"
    assert period[("acme", "m_seats", ("x",))] == 6, "u1-u4, and two unknown values on day 2"
    assert period[("acme", "m_latest", ("x",))] == 1, "day 2's event is the latest"
    for day in (DAY1, DAY2):
        daily = quantities(
            store,
            "SELECT customer, meter, group_values, toString(quantity) FROM usage_daily "
            f"WHERE day = '{day.date()}'",
        )
        assert daily == rate_stage_quantities(windows, lates, day, day + timedelta(days=1)), day
    day1 = ("acme", "m_avg", ("x",)), ("acme", "m_seats", ("x",)), ("acme", "m_latest", ("x",))
    assert [daily_quantity(store, k, DAY1) for k in day1] == [
        Decimal("0.000000002"),
        4,
        Decimal(6),
    ], "1.5 units rounds to 2; u1-u4; the tie goes to the greater digest"


def daily_quantity(client: Any, key: Key, day: datetime) -> Decimal:
    customer, meter, group = key
    rows = client.query(
        "SELECT toString(quantity) FROM usage_daily WHERE customer = {c:String} "
        "AND meter = {m:String} AND group_values = {g:Array(String)} AND day = {d:Date}",
        parameters={"c": customer, "m": meter, "g": list(group), "d": day.date()},
    ).result_rows
    return Decimal(rows[0][0])


def test_both_landing_paths_store_the_same_partial_state(store: Any) -> None:
    v2, _, _, _ = engine_batches()
    land_avro(store, WindowsWriter(), v2)
    land_rows(store, WindowsWriter(), v2)
    columns = ", ".join(WindowsWriter.columns)
    landed = store.query(
        f"SELECT (SELECT count() FROM usage_windows_raw), "
        f"(SELECT count() FROM (SELECT DISTINCT {columns} FROM usage_windows_raw))"
    )
    updates = sum(len(WINDOWS.decode(p)["updates"]) for p in v2)
    assert landed.result_rows == [(2 * updates, updates)], "each update twice, identical"
    partial = store.query(
        "SELECT meter, sum, distinct_values, toString(latest_time), latest_digest "
        "FROM usage_windows WHERE window_start = '2026-11-03 11:00:00' ORDER BY meter"
    ).result_rows
    assert partial == [
        ("m_avg", Decimal("0.000000002"), [], None, None),
        ("m_count", None, [], None, None),
        ("m_latest", None, [], "2026-11-03 11:40:00.000000", (0x0F).to_bytes(16, "big").hex()),
        ("m_max", None, [], None, None),
        ("m_min", None, [], None, None),
        ("m_seats", None, ["u1", "u3"], None, None),
        ("m_sum", Decimal(3), [], None, None),
    ]


def test_the_migration_applies_on_top_of_an_existing_store(tmp_path: Path) -> None:
    before = tmp_path / "before"
    before.mkdir()
    for version, path in sorted((int(p.name[:4]), p) for p in MIGRATIONS_DIR.glob("*.sql")):
        if version < 7:
            shutil.copy(path, before / path.name)
    client = clickhouse_connect.get_client(dsn=f"chdb://{tmp_path / 'store'}")
    try:
        apply_migrations(client, before)
        _, _, v1, lates = engine_batches()
        old = (
            "customer",
            "meter",
            "aggregation",
            "group_by",
            "group_values",
            "window_start",
            "window_end",
            "value",
            "revision",
            "is_correction",
        )
        rows = [list(r)[: len(old)] for p in v1 for r in WindowsWriter().rows(Message(p))]  # type: ignore[arg-type]
        client.insert("usage_windows_raw", rows, column_names=list(old))
        land_rows(client, LateWriter(), lates)
        newer = sorted(
            int(p.name[:4]) for p in MIGRATIONS_DIR.glob("*.sql") if int(p.name[:4]) >= 7
        )
        assert apply_migrations(client) == newer and newer[0] == 7  # 0007 and every later one
        assert apply_migrations(client) == [], "applied once"
        got = quantities(
            client,
            "SELECT customer, meter, group_values, toString(quantity) "
            "FROM usage_quantity(from = '2026-11-01', to = '2026-12-01')",
        )
        assert got == rate_stage_quantities(v1, lates, *NOVEMBER)
        defaults = client.query(
            "SELECT DISTINCT sum, distinct_values, latest_time, latest_digest FROM usage_windows"
        ).result_rows
        assert defaults == [(None, [], None, None)], "rows landed before keep the defaults"
    finally:
        client.close()


# -- the real pipeline -----------------------------------------------------------------------


def exact(meter: str, rows: list[UsageEvent]) -> Decimal:
    """The aggregation over ``rows`` (one group's distinct events), by hand."""
    v = [r.values["v"] for r in rows]
    match AGGREGATIONS[meter]:
        case "SUM":
            return sum(v, Decimal(0))
        case "COUNT":
            return Decimal(len(rows))
        case "MIN":
            return min(v)
        case "MAX":
            return max(v)
        case "AVG":
            return Decimal(round(Fraction(sum(v, Decimal(0))) / len(v) * 10**9)) / 10**9
        case "UNIQUE_COUNT":
            return Decimal(len({r.dimensions["user"] for r in rows}))
        case "LATEST":
            return max(rows, key=lambda r: (r.time, event_digest(r.source, r.id))).values["v"]
    raise AssertionError(meter)


def by_hand_groups(events: list[UsageEvent]) -> dict[tuple[Key, date], Decimal]:
    """Per customer, meter, group and UTC day: the aggregation over that day's events."""
    unique = {(e.source, e.id): e for e in events}
    days: dict[tuple[str, str, date], list[UsageEvent]] = {}
    for e in unique.values():
        days.setdefault((owner(e.subject, e.time), e.dimensions["g"], e.time.date()), []).append(e)
    return {
        ((customer, meter, (g,)), day): exact(meter, rows)
        for (customer, g, day), rows in days.items()
        for meter in AGGREGATIONS
    }


def by_hand_period(events: list[UsageEvent]) -> dict[Key, Decimal]:
    unique = {(e.source, e.id): e for e in events}
    groups: dict[tuple[str, str], list[UsageEvent]] = {}
    for e in unique.values():
        groups.setdefault((owner(e.subject, e.time), e.dimensions["g"]), []).append(e)
    return {
        (customer, meter, (g,)): exact(meter, rows)
        for (customer, g), rows in groups.items()
        for meter in AGGREGATIONS
    }


def sink_caught_up(settings: Settings) -> bool:
    """The sink has landed (and committed) every window update and late event."""
    names = [topics.topic_name(settings, t) for t in (topics.USAGE_WINDOWS, topics.USAGE_LATE)]
    return group_lag(settings, f"{settings.topic_prefix}railyard-sink", names) == 0


def test_the_views_equal_the_months_events_by_hand(kafka: Settings, tmp_path: Path) -> None:
    """Hour windows, the second half of the month produced first: the first half arrives
    past the lateness bound and is merged from late_usage, every aggregation exactly."""
    settings, _ = setup(kafka, tmp_path, window_size="hour")
    events = month_of_events(seed=14)
    first = [e for e in events if e.time < MOVE]
    second = [e for e in events if e.time >= MOVE]
    pipeline = Pipeline(settings)
    try:
        pipeline.start("sink", "worker")
        publish(settings, lines_of(second))
        wait_landed(pipeline, len({e.id for e in second}))
        pipeline.wait_for(lambda: settled(settings), timeout=180, what="the second half")
        publish(settings, lines_of(first))
        wait_landed(pipeline, len({e.id for e in events}))
        pipeline.wait_for(
            lambda: settled(settings) and sink_caught_up(settings),
            timeout=180,
            what="every window and late event to land",
        )
        late_events = pipeline.count("SELECT count() FROM late_usage")
        assert late_events > 0, "the first half came past the lateness bound"
        without_state = pipeline.count(
            "SELECT countIf(aggregation IN ('SUM', 'AVG') AND sum IS NULL "
            "OR aggregation = 'UNIQUE_COUNT' AND length(distinct_values) != toUInt64(value) "
            "OR aggregation = 'LATEST' AND latest_time IS NULL) FROM usage_windows"
        )
        assert without_state == 0, "every window landed with its partial state"
        sink_log = pipeline.procs["sink"].log_path.read_text(errors="replace")
        assert "engine refused usage_windows_raw" not in sink_log, "the Avro reader took them"

        period = rows_of(
            settings,
            "SELECT customer, meter, group_values, toString(quantity) "
            "FROM usage_quantity(from = '2026-11-01', to = '2026-12-01')",
        )
        assert period == by_hand_period(events)
        added: dict[tuple[str, str], Decimal] = {}
        for (customer, meter, _), q in period.items():
            added[(customer, meter)] = added.get((customer, meter), Decimal(0)) + q
        assert added == by_hand(events), "groups added up: what each invoice line bills"

        daily = {
            ((c, m, tuple(g)), date.fromisoformat(d)): Decimal(q)
            for c, m, g, d, q in query(
                settings,
                "SELECT customer, meter, group_values, toString(day), toString(quantity) "
                "FROM usage_daily",
            ).rows
        }
        assert daily == by_hand_groups(events), "every aggregation exact per day"
        folded: dict[Key, Decimal] = {}
        fold: dict[str, Callable[[Decimal, Decimal], Decimal]] = {
            "SUM": Decimal.__add__,
            "COUNT": Decimal.__add__,
            "MIN": min,
            "MAX": max,
        }
        for (key, _), q in sorted(daily.items()):
            how = fold.get(AGGREGATIONS[key[1]])
            if how is not None:
                folded[key] = how(folded[key], q) if key in folded else q
        assert folded == {k: q for k, q in period.items() if AGGREGATIONS[k[1]] in fold}, (
            "SUM and COUNT days add up to the month, MIN and MAX days fold into it"
        )

        report = railyard(
            settings, "usage", "--customer", "alpha", "--from", "2026-11-01", "--to", "2026-11-30"
        )
        assert usage_report_span(report) == {
            (meter, f"{{'g':'{g}'}}"): q
            for (customer, meter, (g,)), q in period.items()
            if customer == "alpha"
        }
    finally:
        pipeline.stop()


def rows_of(settings: Settings, sql: str) -> dict[Key, Decimal]:
    return {(c, m, tuple(g)): Decimal(q) for c, m, g, q in query(settings, sql).rows}


def usage_report_span(report: str) -> dict[tuple[str, str], Decimal]:
    """The whole-span table of ``railyard usage``: (meter, dimensions) -> quantity."""
    out: dict[tuple[str, str], Decimal] = {}
    for line in report.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if len(cells) == 6 and cells[0] in AGGREGATIONS:
            out[(cells[0], cells[2])] = Decimal(cells[3])
    return out
