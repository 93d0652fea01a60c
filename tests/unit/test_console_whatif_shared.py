"""The what-if page reads the stored events once and judges them per catalog: the same
numbers as ``railyard simulate`` run twice, once per catalog, on the JSON lines."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from connectors.console import whatif
from streams.domain.catalog import Catalog, parse_catalog
from streams.domain.cloudevents import from_json
from streams.domain.rating.screening import (
    ParsedLine,
    default_as_of,
    default_as_of_parsed,
    parse_lines,
)
from streams.domain.rating.simulate import simulate, simulate_parsed
from streams.domain.usage import UsageEvent
from streams.domain.validation import Limits
from streams.domain.workload import WorkloadSpec, generate
from streams.domain.workload.catalog import billing_catalog_yaml
from streams.settings import Settings

EXAMPLE = Path(__file__).parents[2] / "deploy" / "catalog.example.yaml"
SPEC = WorkloadSpec(
    seed=11,
    customers=6,
    events=4_000,
    start=datetime(2026, 9, 25, tzinfo=UTC),
    duration=timedelta(days=70),  # September to December: several periods
    duplicate_rate=0.05,
    invalid_rate=0.04,
    late_rate=0.03,
    unknown_subject_rate=0.03,
)
PERIODS = ("2026-09", "2026-10", "2026-11", "2026-12")


def _catalog(text: str) -> Catalog:
    found, problems = parse_catalog(text, "test.yaml")
    assert found is not None, "\n".join(map(str, problems))
    return found


@pytest.fixture(scope="module")
def lines() -> list[str]:
    return [g.line for g in generate(SPEC).events]


@pytest.fixture(scope="module")
def catalogs() -> tuple[Catalog, Catalog]:
    """In force: no ``active_seats`` meter (its events are rejected as unknown). The
    candidate: the meter back, every unit price doubled and one customer's periods
    moved to the 15th, so screening, attribution periods and the default ``as_of``
    all differ between the two."""
    full = billing_catalog_yaml(EXAMPLE.read_text(), generate(SPEC).customers)
    blocks = re.compile(
        r"  - key: active_seats\n(    .*\n)+|      - meter: active_seats\n(        .*\n)+"
    )
    in_force = "".join(
        line for line in blocks.sub("", full).splitlines(True) if "active_seats" not in line
    )
    candidate = re.sub(
        r'unit_amount: "([0-9.]+)"', lambda m: f'unit_amount: "{Decimal(m[1]) * 2}"', full
    ).replace("anchor_day: 1", "anchor_day: 15", 1)
    a, b = _catalog(in_force), _catalog(candidate)
    assert a.meter_index.knows("seats.active") is False and b.meter_index.knows("seats.active")
    return a, b


def _alone(catalog: Catalog, lines: list[str], period: str, s: Settings) -> whatif.Totals:
    """What two separate ``railyard simulate --period`` runs print, summed per customer."""
    limits = Limits(s.max_event_bytes, s.max_event_age, s.max_clock_skew)
    as_of = default_as_of(catalog, lines, period, s.period_grace, limits, s.max_message_bytes)
    result = simulate(
        catalog, lines, period, as_of, limits=limits, max_message_bytes=s.max_message_bytes
    )
    out: dict[tuple[str, str], Decimal] = {}
    for invoice in result.invoices:
        key = (invoice.customer, invoice.currency)
        out[key] = out.get(key, Decimal(0)) + invoice.total
    return out


@pytest.mark.parametrize("period", PERIODS)
def test_one_parse_for_both_catalogs_gives_two_simulate_runs_totals(
    lines: list[str], catalogs: tuple[Catalog, Catalog], period: str, tmp_path: Path
) -> None:
    s = Settings(home=tmp_path)
    in_force, candidate = catalogs
    parsed = tuple(parse_lines(lines, s.max_message_bytes))
    sides = whatif.compare(in_force, candidate, parsed, period, s)
    a, b = _alone(in_force, lines, period, s), _alone(candidate, lines, period, s)
    assert sides == whatif.sides(a, b)
    assert {(x.customer, x.currency): x.in_force for x in sides if x.in_force is not None} == a
    assert {(x.customer, x.currency): x.candidate for x in sides if x.candidate is not None} == b
    assert a != b and any(x.difference != 0 for x in sides)


@pytest.mark.parametrize("period", [*PERIODS, None])
def test_parsed_entry_points_equal_the_line_ones(
    lines: list[str], catalogs: tuple[Catalog, Catalog], period: str | None
) -> None:
    limits, grace = Limits(), timedelta(hours=1)
    parsed = tuple(parse_lines(lines))
    for catalog in catalogs:
        as_of = default_as_of(catalog, lines, period, grace, limits)
        assert default_as_of_parsed(catalog, parsed, period, grace, limits) == as_of
        alone = simulate(catalog, lines, period, as_of, limits=limits)
        shared = simulate_parsed(catalog, parsed, period, as_of, limits=limits)
        assert alone.invoices and shared.invoices == alone.invoices
        assert shared.not_billed == alone.not_billed
        assert (shared.rejected, shared.duplicates, shared.unattributed, shared.accepted) == (
            alone.rejected,
            alone.duplicates,
            alone.unattributed,
            alone.accepted,
        )
        assert alone.duplicates and alone.rejected and alone.unattributed  # the data has them


def test_parse_lines_counts_blank_lines_and_keeps_rejections() -> None:
    parsed = list(parse_lines(["", "junk", "  ", '{"id": 1}', "{" + "x" * 40 + "}"], 30))
    assert [p.number for p in parsed] == [2, 4, 5]
    assert all(p.event is None and p.rejection is not None for p in parsed)
    assert parsed[2].size == 42 and "limit 30" in str(parsed[2].rejection.detail)  # type: ignore[union-attr]


# -- the stored events, built from the columns ---------------------------------------------


def _row(event: UsageEvent, values: dict[str, str] | None = None) -> list[Any]:
    """``event`` as a row of the columns event_lines takes (ClickHouse's UTC text)."""
    texts = values or {k: format(v, "f") for k, v in event.values.items()}
    return [
        event.id,
        event.source,
        event.type,
        event.subject,
        event.time.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
        list(texts),
        list(texts.values()),
        dict(event.dimensions),
        event.dataschema,
    ]


def test_stored_events_built_from_the_columns_equal_their_lines_read(
    lines: list[str],
) -> None:
    rows = []
    for line in lines:
        event = from_json(line)
        if isinstance(event, UsageEvent) and event.time.year > 2000:
            rows.append(_row(event))
    base = rows[0]
    odd = [
        [*base[:5], ["tokens"], ["1200.500000000"], {"model": "gpt-4o"}, "https://s/1"],
        [*base[:5], ["tokens"], ["100.000000000"], {"m": 'é \u2028 "q" \\ / 😀'}, ""],
        # more digits than normalize() keeps: the line rounds them, and so must this
        [*base[:5], ["tokens"], ["1234567890123456789012345678.123456789"], {}, None],
        [*base[:5], ["tokens"], ["0.000000001"], {}, None],
        [*base[:5], ["tokens"], ["0"], {}, None],
        # rows reading the line would refuse or rewrite take the long way
        ["", *base[1:]],
        [*base[:5], ["tokens"], ["1"], {"tokens": "x"}, None],
        [*base[:5], ["tokens"], ["99999999999999999999999999999.5"], {}, None],
        [*base[:5], ["tokens"], ["1"], {"a": "nul\x00"}, None],
        [*base[:5], ["tok\x00ens"], ["1"], {}, None],
    ]
    rows += odd
    for limit in (1 << 20, 330, 300, 250):  # some lines over, some at the limit
        expected = tuple(parse_lines(whatif.event_lines(rows), limit))
        assert whatif.parsed_events(rows, limit) == expected
    sizes = [p.size for p in whatif.parsed_events(rows, 1 << 20)]
    assert sizes == [len(line.encode()) for line in whatif.event_lines(rows)]
    at = next(p for p in whatif.parsed_events(odd[:1], 1 << 20))
    assert whatif.parsed_events(odd[:1], at.size) == (at,)
    assert whatif.parsed_events(odd[:1], at.size - 1)[0].event is None


def test_stored_rows_decode_the_one_json_column() -> None:
    row = '["e1","gw\\/eu","ai.tokens","k","2026-10-03 10:00:00.250000",["tokens"],["1.5"],{"m":"x"},null]'
    assert whatif.stored_rows([[row]]) == [
        [
            "e1",
            "gw/eu",
            "ai.tokens",
            "k",
            "2026-10-03 10:00:00.250000",
            ["tokens"],
            ["1.5"],
            {"m": "x"},
            None,
        ]
    ]


# -- what the API process keeps ------------------------------------------------------------


def test_kept_reads_the_events_once_per_fingerprint_and_bounds_the_totals() -> None:
    kept = whatif.Kept(size=2)
    reads: list[int] = []

    def read() -> tuple[ParsedLine, ...]:
        reads.append(1)
        return (ParsedLine(len(reads), 0, None),)

    assert kept.events((10, "t1"), read) == (ParsedLine(1, 0, None),)
    assert kept.events((10, "t1"), read) == (ParsedLine(1, 0, None),)
    assert kept.events((11, "t2"), read) == (ParsedLine(2, 0, None),) and len(reads) == 2
    computed: list[str] = []

    def totals(name: str) -> whatif.Totals:
        computed.append(name)
        return {(name, "USD"): Decimal(1)}

    for name in ("a", "b", "a", "c", "a", "b"):
        kept.totals((name, "2026-11", (11, "t2")), partial(totals, name))
    # a and b computed, a kept (used last), c evicts b, a kept, b computed again
    assert computed == ["a", "b", "c", "b"]
    assert kept.totals(("a", "2026-10", (11, "t2")), lambda: totals("a2")) == {("a2", "USD"): 1}
