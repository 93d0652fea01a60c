"""Delivery outcomes land in ClickHouse and `railyard invoices --status` reads them back."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

import pytest

from connectors.clickhouse.analyst import query
from connectors.clickhouse.delivery import counts_sql, status_sql
from connectors.rails.sandbox import RailPeer
from streams.settings import Settings
from tests.fixtures.rails.invoices import publish, sample_invoice
from tests.integration.harness import Pipeline
from tests.integration.rails_harness import InProcess, has, wait_for

pytestmark = pytest.mark.integration


def test_where_every_invoice_stands(
    stack: Settings, pipeline: Pipeline, webhook: RailPeer, running: Callable[..., InProcess]
) -> None:
    retried, refused, fine = (sample_invoice(n, "webhook") for n in (1, 2, 3))
    webhook.fail_next(1, 503)
    publish(stack, [retried])
    running(webhook)
    wait_for(lambda: has(stack, retried.id, "delivered"), "the retried invoice")
    webhook.reject_next(422, "unknown receiver account")
    publish(stack, [refused, fine])
    wait_for(lambda: has(stack, fine.id, "delivered"), "the last invoice")
    pipeline.start("sink")
    pipeline.wait_for(
        lambda: pipeline.count("SELECT count() FROM invoice_delivery") == 3,
        what="three invoices in invoice_delivery",
    )

    rows = query(stack, status_sql("webhook")).rows
    by_id = {r[1]: r for r in rows}
    assert by_id[retried.id][4] == "delivered" and by_id[retried.id][5] == 2
    assert by_id[fine.id][4] == "delivered" and by_id[fine.id][6]["receipt"]
    assert by_id[refused.id][4] == "failed"
    assert "unknown receiver account" in by_id[refused.id][7]
    assert query(stack, counts_sql()).rows == [["webhook", 0, 2, 0, 1]]
    assert pipeline.count("SELECT count() FROM invoice_dead_letters WHERE reason = 'rejected'") == 1

    shown = subprocess.run(
        [sys.executable, "-m", "streams.cli", "invoices", "--status", "--limit", "10"],
        env={**os.environ, **stack.to_env(), "COLUMNS": "250"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    assert retried.number in shown.stdout and "failed" in shown.stdout
