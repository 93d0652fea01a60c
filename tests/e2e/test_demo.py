"""The README's demo, end to end, as a new user runs it (its own broker, store and ports)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.kafka import free_ports

pytestmark = pytest.mark.e2e

RAILS = ("adyen", "netsuite", "outbox", "paypal", "salesforce", "sap", "stripe", "webhook")
"""The demo catalog bills through every built-in rail."""


def test_the_demo_lands_every_valid_event_once_and_dead_letters_the_rest(tmp_path: Path) -> None:
    kafka, controller, query = free_ports(3)
    env = {
        **os.environ,
        "RAILYARD_HOME": str(tmp_path / "home"),
        "RAILYARD_KAFKA_BOOTSTRAP": f"127.0.0.1:{kafka}",
        "RAILYARD_KAFKA_CONTROLLER_PORT": str(controller),
        "RAILYARD_QUERY_PORT": str(query),
        "COLUMNS": "200",
    }
    env.pop("RAILYARD_CLICKHOUSE_DSN", None)
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "demo", "--events", "4000"],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    out = done.stdout
    assert done.returncode == 0, f"{out}\n{done.stderr}"
    assert "What landed, per subject and event type" in out
    assert "usage.dlq by reason" in out
    # every defect kind the generator makes, and the third-party garbage, were dead-lettered
    for reason in ("malformed_payload", "unknown_schema", "negative_value", "non_numeric_value",
                   "missing_field", "timestamp_out_of_range", "oversized_payload"):  # fmt: skip
        assert re.search(rf"{reason}\s*│\s*\d+", out), reason
    # metering: the unknown key was parked, then attributed by a catalog change
    assert re.search(r"key_demo_new_teammate\s*│\s*ai\.tokens\s*│\s*1\s*│", out)
    assert "the parked event is now billed to nakatomi-io" in out
    assert "Biggest dimension per customer and meter" in out
    assert re.search(r"unattributed 0", out)
    counts = dict(re.findall(r"\b(accepted|attributed) (\d+)", out))
    assert counts["accepted"] == counts["attributed"], "every accepted event was attributed"
    # billing: last month closed, one invoice per subscribed customer on its rail topic,
    # equal to railyard simulate on the same lines
    assert "Invoices on invoices.<rail>" in out
    assert "stream vs railyard simulate: identical, to the cent (12 invoices)" in out
    for rail in RAILS:
        assert re.search(rf"│ {rail}\s*│", out), rail
    # delivery: every invoice on the rail topics reached its rail's sandbox peer through the
    # real connector, and ClickHouse says so
    assert "Delivery per rail (invoice_delivery)" in out
    delivery = out.split("Delivery per rail (invoice_delivery)", 1)[1].split(
        "Delivery per invoice"
    )[0]
    rows = {
        m[0]: tuple(map(int, m[1:]))
        for m in re.findall(r"│ (\w+)\s*│\s*(\d+) │\s*(\d+) │\s*(\d+) │\s*(\d+) │", delivery)
    }
    assert sorted(rows) == sorted(RAILS), delivery
    for rail, (invoices, delivered, _retried, dead) in rows.items():
        assert invoices >= 1 and delivered == invoices and dead == 0, (rail, delivery)
    assert re.search(r"stripe\s*│.*│ .*invoice=in_\w+", delivery), delivery
    per_invoice = out.split("Delivery per invoice", 1)[1]
    assert "failed" not in per_invoice.split("invoices delivered to")[0], per_invoice
    assert "stopped worker, sink and broker" in out
    assert not (tmp_path / "home" / "run" / "sink.pid").exists(), "the sink exited cleanly"
