"""``railyard rails redrive``: a dead letter goes back to its rail and is held there once."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

import pytest

from connectors.rails.redrive import redrive
from connectors.rails.sandbox import RailPeer
from streams.settings import Settings
from tests.fixtures.rails.invoices import publish, sample_invoice
from tests.integration.rails_harness import (
    InProcess,
    dead_letters,
    has,
    statuses,
    wait_for,
)

pytestmark = pytest.mark.integration


def test_a_redriven_dead_letter_is_delivered_once(
    stack: Settings, webhook: RailPeer, running: Callable[..., InProcess]
) -> None:
    refused, fine = sample_invoice(1, "webhook"), sample_invoice(2, "webhook")
    webhook.reject_next(422, "unknown receiver account")
    publish(stack, [refused, fine])
    running(webhook)
    wait_for(lambda: has(stack, refused.id, "failed"), "the refused invoice to be dead-lettered")
    wait_for(lambda: has(stack, fine.id, "delivered"), "the other invoice")
    assert webhook.created(refused.idempotency_key) == 0

    # Another rail's letter or another invoice is not touched.
    assert [r for r in redrive(stack, rail="stripe") if r.redriven] == []
    assert redrive(stack, invoice="INV-none") == []
    (done,) = redrive(stack, rail="webhook", invoice=refused.number)
    assert done.redriven and done.invoice_id == refused.id and done.reason == "rejected"
    assert done.rail == "webhook" and "unknown receiver account" in done.error

    wait_for(lambda: has(stack, refused.id, "delivered"), "the redriven invoice")
    assert webhook.created(refused.idempotency_key) == 1
    assert webhook.created(fine.idempotency_key) == 1
    assert len(dead_letters(stack)) == 1
    steps = [s["status"] for s in statuses(stack) if s["invoice_id"] == refused.id]
    assert steps == ["failed", "delivered"]

    # Delivered since: a second redrive (through the command) skips it.
    shown = subprocess.run(
        [sys.executable, "-m", "streams.cli", "rails", "redrive", "--rail", "webhook"],
        env={**os.environ, **stack.to_env(), "COLUMNS": "250"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    assert refused.number in shown.stdout and "skipped: delivered since" in shown.stdout
    assert "0 of 1 dead letter(s) redriven" in shown.stdout
    assert webhook.created(refused.idempotency_key) == 1
