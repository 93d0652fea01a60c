"""``railyard simulate``: invoices from a catalog and JSON lines, as a table or exact JSON."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streams.cli import app
from streams.domain.catalog import load_catalog
from streams.domain.rating.simulate import simulate
from streams.domain.validation import Limits
from streams.domain.workload import WorkloadSpec, generate

EXAMPLE = Path(__file__).parents[2] / "deploy" / "catalog.example.yaml"


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workload = generate(
        WorkloadSpec(seed=7, customers=12, events=3000, duration=timedelta(days=20),
                     start=datetime(2026, 10, 10, tzinfo=UTC), duplicate_rate=0.05,
                     invalid_rate=0.02)
    )  # fmt: skip
    path = tmp_path_factory.mktemp("sim") / "usage.jsonl"
    path.write_text("\n".join(g.line for g in workload.events) + "\n")
    return path


def run(*args: str) -> str:
    result = CliRunner().invoke(
        app, ["simulate", "--catalog", str(EXAMPLE), *args], env={"COLUMNS": "200",
                                                                  "RAILYARD_MAX_EVENT_AGE": "400d"}
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return result.output


def test_json_is_exact_and_matches_the_library(events: Path) -> None:
    doc = json.loads(run("--events", str(events), "--period", "2026-10", "--format", "json"))
    expected = simulate(load_catalog(EXAMPLE), events.read_text().splitlines(), "2026-10",
                        datetime.now(UTC), limits=Limits(max_age=timedelta(days=400))).invoices  # fmt: skip
    assert [d["id"] for d in doc] == [i.id for i in expected]
    assert [Decimal(d["total"]) for d in doc] == [i.total for i in expected]
    assert all(d["period_start"].startswith("2026-10") for d in doc)
    assert {d["rail"] for d in doc} >= {"stripe", "netsuite", "sap", "salesforce"}


def test_table_shows_each_invoice_and_a_summary(events: Path) -> None:
    out = run("--events", str(events), "--period", "2026-10")
    assert "Simulated invoices" in out and "subtotal" in out
    assert "not billed:" in out and "duplicates" in out  # what was skipped, and why
    assert out.count("INV-202610") >= 12


def test_bad_format_is_refused(events: Path) -> None:
    result = CliRunner().invoke(
        app, ["simulate", "--catalog", str(EXAMPLE), "--events", str(events), "--format", "xml"]
    )
    assert result.exit_code != 0
