"""``railyard generate``: events from the catalog's subjects, so any seed bills."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from connectors.files import load_catalog
from streams.cli.main import app
from tests.fixtures.kafka import free_ports

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "deploy" / "catalog.example.yaml"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


@pytest.fixture(autouse=True)
def no_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing listens on the bootstrap address: the catalog in force is RAILYARD_CATALOG."""
    (closed,) = free_ports(1)
    monkeypatch.setenv("RAILYARD_KAFKA_BOOTSTRAP", f"127.0.0.1:{closed}")
    monkeypatch.setenv("RAILYARD_CATALOG", str(EXAMPLE))


def _owners(path: Path) -> list[str | None]:
    catalog = load_catalog(EXAMPLE)
    events = [json.loads(line) for line in path.read_text().splitlines()]
    return [catalog.customer_for(e["subject"], datetime.fromisoformat(e["time"])) for e in events]


@pytest.mark.parametrize("catalog_flag", [(), ("--catalog", str(EXAMPLE))])
def test_any_seed_generates_events_of_the_catalogs_customers(
    tmp_path: Path, catalog_flag: tuple[str, ...]
) -> None:
    out = tmp_path / "usage.jsonl"

    done = invoke(
        "generate",
        "--out",
        str(out),
        "--events",
        "600",
        "--seed",
        "1234",
        "--days",
        "3",
        "--start",
        "2026-11-20T00:00:00Z",
        *catalog_flag,
    )

    assert done.exit_code == 0, done.output
    owners = _owners(out)
    assert len(owners) == 600
    assert None not in owners, "every event bills to a customer of the catalog"
    assert len(set(owners)) > 5
    source = str(EXAMPLE) if catalog_flag else f"RAILYARD_CATALOG={EXAMPLE}"
    assert source in " ".join(done.output.split())


def test_synthetic_customers_are_made_up_from_the_seed(tmp_path: Path) -> None:
    out = tmp_path / "usage.jsonl"

    done = invoke(
        "generate",
        "--out",
        str(out),
        "--events",
        "300",
        "--seed",
        "1234",
        "--synthetic",
        "--customers",
        "5",
        "--start",
        "2026-11-20T00:00:00Z",
    )

    assert done.exit_code == 0, done.output
    assert set(_owners(out)) == {None}, "no catalog knows made-up subjects"


def test_a_catalog_with_nobody_for_the_span_is_a_clean_error(tmp_path: Path) -> None:
    done = invoke(
        "generate",
        "--out",
        str(tmp_path / "u.jsonl"),
        "--events",
        "10",
        "--start",
        "2024-01-01T00:00:00Z",
    )

    assert done.exit_code != 0
    assert "owns a subject for the whole span" in str(done.exception)
