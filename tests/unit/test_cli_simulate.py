"""``railyard simulate``: invoices and every line not billed, the same on any day; clean errors."""

import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from connectors.files import load_catalog
from streams.cli.main import app
from streams.cli.simulate_report import event_lines
from streams.domain.catalog import parse_catalog
from streams.domain.rating.screening import default_as_of
from streams.domain.rating.simulate import simulate
from streams.domain.validation import Limits
from streams.domain.workload import WorkloadSpec, generate

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "deploy" / "catalog.example.yaml"
NAKATOMI_KEY = "key_7bc746c4d3f98809"  # owned by nakatomi-io (anchor day 1) since 2025-03-01


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workload = generate(
        WorkloadSpec(
            seed=7,
            customers=12,
            events=3000,
            duration=timedelta(days=20),
            start=datetime(2026, 10, 10, tzinfo=UTC),
            duplicate_rate=0.05,
            invalid_rate=0.02,
        )
    )
    path = tmp_path_factory.mktemp("sim") / "usage.jsonl"
    path.write_text("\n".join(g.line for g in workload.events) + "\n")
    return path


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, ["simulate", *args], env={"COLUMNS": "200"})


def run(*args: str) -> str:
    result = invoke("--catalog", str(EXAMPLE), *args)
    assert result.exit_code == 0, result.output
    return result.stdout


def usage_line(n: int, time: str, model: str = "gpt-4o", subject: str = NAKATOMI_KEY) -> str:
    event = {
        "specversion": "1.0",
        "id": f"u{n}",
        "source": "gw",
        "type": "ai.tokens",
        "subject": subject,
        "time": time,
        "data": {"tokens": 100, "model": model, "direction": "input"},
    }
    return json.dumps(event, ensure_ascii=False)


def test_json_is_one_object_equal_to_the_library(events: Path) -> None:
    doc = json.loads(run("--events", str(events), "--period", "2026-10", "--format", "json"))
    assert list(doc) == ["period", "as_of", "counts", "invoices", "not_billed"]
    catalog, s = load_catalog(EXAMPLE), Limits()
    lines = event_lines(events.read_bytes(), str(events))
    as_of = default_as_of(catalog, lines, "2026-10", timedelta(hours=1), s)
    expected = simulate(catalog, lines, "2026-10", as_of)
    assert doc["period"] == "2026-10" and doc["as_of"] == "2026-11-18T01:00:00Z"
    assert [d["id"] for d in doc["invoices"]] == [i.id for i in expected.invoices]
    assert [Decimal(d["total"]) for d in doc["invoices"]] == [i.total for i in expected.invoices]
    assert all(d["period_start"].startswith("2026-10") for d in doc["invoices"])
    assert {d["rail"] for d in doc["invoices"]} >= {"stripe", "netsuite", "sap", "salesforce"}
    listed = [(n["line"], n["reason"]) for n in doc["not_billed"]]
    assert listed == [(n.line, n.reason.value) for n in expected.not_billed]
    counts = doc["counts"]
    assert counts["lines"] == 3000 == counts["accepted"] + len(doc["not_billed"])
    assert counts["not_billed"] == {
        "rejected": 55,
        "duplicate": 150,
        "unattributed": 0,
        "too_old": 5,
    }
    assert counts["dead_letters"] == dict(expected.rejected)
    first_dup = next(n for n in doc["not_billed"] if n["reason"] == "duplicate")
    assert first_dup["first_line"] < first_dup["line"] and first_dup["id"] and first_dup["source"]
    lines_text = events.read_text().split("\n")
    original = json.loads(lines_text[first_dup["first_line"] - 1])
    assert (original["id"], original["source"]) == (first_dup["id"], first_dup["source"])
    bad = {n["dead_letter"] for n in doc["not_billed"] if n["reason"] == "rejected"}
    assert {"malformed_payload", "negative_value", "timestamp_out_of_range"} <= bad


# The wall clock: swapped under the CLI in a child process, it must change nothing.
CLOCK_SHIM = textwrap.dedent(
    """\
    import datetime as dt
    import sys
    import time

    FAKE = float(sys.argv.pop(1))
    real = dt.datetime


    class Clock(real):
        @classmethod
        def now(cls, tz=None):
            return real.fromtimestamp(FAKE, tz)

        @classmethod
        def utcnow(cls):
            return real.fromtimestamp(FAKE, dt.UTC).replace(tzinfo=None)

        @classmethod
        def today(cls):
            return real.fromtimestamp(FAKE)


    dt.datetime = Clock
    time.time = lambda: FAKE  # date.today() reads it too
    time.time_ns = lambda: int(FAKE * 1e9)
    if sys.argv[1:] == ["--clock"]:
        print(dt.datetime.now(dt.UTC).date(), dt.date.today())
        raise SystemExit(0)
    from streams.cli.main import app

    app(prog_name="railyard")
    """
)


def test_json_is_byte_identical_under_two_wall_clocks(events: Path, tmp_path: Path) -> None:
    shim = tmp_path / "clock_shim.py"
    shim.write_text(CLOCK_SHIM)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("RAILYARD_MAX_EVENT_AGE", None)

    def railyard_at(day: datetime, *args: str) -> subprocess.CompletedProcess[bytes]:
        command = [sys.executable, str(shim), str(day.timestamp()), *args]
        return subprocess.run(command, capture_output=True, env=env, cwd=ROOT, timeout=120)

    # One day after the usage, and 80 days on: past the 40-day event age under the
    # old `now`, which dropped every October event without a word.
    days = datetime(2026, 11, 1, tzinfo=UTC), datetime(2027, 1, 20, tzinfo=UTC)
    assert [railyard_at(d, "--clock").stdout.split()[0] for d in days] == [
        b"2026-11-01",
        b"2027-01-20",
    ]
    args = ("simulate", "--catalog", str(EXAMPLE), "--events", str(events), "--format", "json")
    first, second = (railyard_at(d, *args) for d in days)
    assert first.returncode == 0, first.stderr.decode()
    assert first.stdout == second.stdout
    doc = json.loads(first.stdout)
    assert len(doc["invoices"]) >= 12 and doc["counts"]["not_billed"]["too_old"] == 5


def test_table_shows_each_invoice_and_what_was_not_billed(events: Path) -> None:
    out = run("--events", str(events), "--period", "2026-10")
    assert "Simulated invoices" in out and "subtotal" in out
    assert out.count("INV-202610") >= 12
    assert "as of 2026-11-18T01:00:00Z" in out
    assert "Not billed" in out and "negative_value" in out and "too_old" in out
    assert "not billed: 210 of 3000 lines (55 rejected, 150 duplicate, 5 too_old)" in out


def test_as_of_judges_the_age_of_every_event(events: Path) -> None:
    late = json.loads(
        run("--events", str(events), "--as-of", "2027-06-01T00:00:00+02:00", "--format", "json")
    )
    assert late["as_of"] == "2027-05-31T22:00:00Z"
    assert late["invoices"] == [] and late["counts"]["accepted"] == 0
    # Every event too old, but for those rejected before their time is looked at.
    assert late["counts"]["not_billed"] == {
        "rejected": 45,
        "duplicate": 0,
        "unattributed": 0,
        "too_old": 2955,
    }


def test_strict_exits_3_and_says_why(events: Path, tmp_path: Path) -> None:
    result = invoke(
        "--catalog", str(EXAMPLE), "--events", str(events), "--strict", "--format", "json"
    )
    assert result.exit_code == 3
    assert json.loads(result.stdout)["not_billed"]  # the report is still printed
    assert "strict: not billed: 210 of 3000 lines" in result.stderr
    clean = tmp_path / "clean.jsonl"
    clean.write_text(usage_line(1, "2026-11-02T10:00:00Z") + "\n")
    ok = invoke("--catalog", str(EXAMPLE), "--events", str(clean), "--strict")
    assert ok.exit_code == 0, ok.output
    assert "not billed" not in ok.output


def test_lines_split_on_newline_only(tmp_path: Path) -> None:
    # U+2028, U+2029 and U+0085 inside a JSON string are data; CRLF line ends are fine.
    lines = [
        usage_line(1, "2026-11-02T10:00:00Z", model="gpt\u2028four"),
        usage_line(2, "2026-11-03T10:00:00Z", model="gpt\u0085four\u2029"),
        usage_line(3, "2026-11-04T10:00:00Z"),
    ]
    path = tmp_path / "separators.jsonl"
    path.write_bytes("\r\n".join(lines).encode() + b"\r\n")
    assert len(path.read_text().splitlines()) > 3  # what the old reader split it into
    doc = json.loads(run("--events", str(path), "--format", "json", "--strict"))
    assert doc["counts"]["lines"] == 3 == doc["counts"]["attributed"]
    assert doc["not_billed"] == []
    tokens = [ln for i in doc["invoices"] for ln in i["lines"] if ln.get("meter") == "ai_tokens"]
    models = {d["value"] for ln in tokens for d in ln["dimensions"] if d["name"] == "model"}
    assert models == {"gpt\u2028four", "gpt\u0085four\u2029", "gpt-4o"}


def test_event_lines_unit() -> None:
    assert event_lines(b'{"a": "x\xe2\x80\xa8y"}\r\n\n{}', "f") == [
        b'{"a": "x\xe2\x80\xa8y"}',
        b"",
        b"{}",
    ]


# Errors: a message naming what is wrong, exit 2, never a traceback.


def fails(result: Result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # not an uncaught exception
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def test_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    good = usage_line(1, "2026-11-02T10:00:00Z").encode()
    path.write_bytes(good + b"\n" + good + b"\n" + good.replace(b"gpt", b"g\xe9t") + b"\n")
    fails(invoke("--catalog", str(EXAMPLE), "--events", str(path)), f"{path}:3: not valid UTF-8")


def test_a_missing_or_empty_events_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    fails(
        invoke("--catalog", str(EXAMPLE), "--events", str(missing)),
        f"cannot read events file {missing}",
    )
    for content in (b"", b"\n  \r\n\n"):
        empty = tmp_path / "empty.jsonl"
        empty.write_bytes(content)
        fails(invoke("--catalog", str(EXAMPLE), "--events", str(empty)), f"{empty} is empty")


def test_a_missing_empty_or_broken_catalog(events: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    fails(
        invoke("--catalog", str(missing), "--events", str(events)), f"cannot read catalog {missing}"
    )
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing yet\n")
    fails(
        invoke("--catalog", str(empty), "--events", str(events)),
        "defines no meters and no customers",
    )
    broken = tmp_path / "broken.yaml"
    text = EXAMPLE.read_text().replace("aggregation: SUM", "aggregation: TOTAL", 2)
    broken.write_text(text.replace("anchor_day: 15", "anchor_day: 45"))
    _, problems = parse_catalog(broken.read_text(), str(broken))
    assert len(problems) >= 3
    fails(
        invoke("--catalog", str(broken), "--events", str(events)),
        f"{len(problems)} problem(s)",
        *map(str, problems),
    )
    # a narrow terminal: each problem still on one line, whole
    validate = CliRunner().invoke(app, ["catalog", "validate", str(broken)], env={"COLUMNS": "40"})
    assert all(str(p) in validate.output for p in problems)  # the same words, file:line first


def test_a_bad_period_is_refused_before_the_events_are_read(tmp_path: Path) -> None:
    missing = tmp_path / "not-read.jsonl"
    for period in ("2026-13", "2026-1", "november"):
        fails(
            invoke("--catalog", str(EXAMPLE), "--events", str(missing), "--period", period),
            "--period",
            "YYYY-MM",
        )


def test_bad_as_of_and_format(events: Path) -> None:
    base = ("--catalog", str(EXAMPLE), "--events", str(events))
    fails(invoke(*base, "--as-of", "2026-12-01T00:00:00"), "--as-of", "no UTC offset")
    fails(invoke(*base, "--as-of", "yesterday"), "--as-of", "RFC 3339")
    fails(invoke(*base, "--format", "xml"), "--format", "table or json")


def test_no_wall_clock_on_the_simulate_path() -> None:
    import inspect

    from streams.cli import billing as cli_billing
    from streams.cli import simulate_report
    from streams.domain.rating import screening
    from streams.domain.rating import simulate as simulate_module

    sources = [inspect.getsource(m) for m in (screening, simulate_module, simulate_report)]
    sources.append(inspect.getsource(cli_billing.simulate))
    for text in sources:
        for clock in ("now(", "time.time", "today(", "utcnow", "monotonic"):
            assert clock not in text
