"""An Adyen refund after the connector restarted (issue 16): the payment comes from the outcome.

The first ``railyard rails run adyen`` charges an invoice and records the payment's
``pspReference`` with its ``delivered`` outcome on ``invoices.status``; a second
process, which never saw that payment, delivers the invoice's credit note as a refund
of that very payment instead of dead-lettering it (``payment_reference_unknown``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from connectors.rails.sandbox import start_peer
from streams.domain.invoice import DocumentKind
from streams.settings import Settings
from tests.fixtures.rails.invoices import partial_credit, publish, sample_invoice
from tests.integration.rails_harness import dead_letters, statuses

pytestmark = pytest.mark.integration


def run_once(stack: Settings, env: dict[str, str]) -> None:
    """``railyard rails run adyen`` in a process of its own, until one invoice is settled."""
    cli = [sys.executable, "-m", "streams.cli", "rails", "run", "adyen", "--max-invoices", "1"]
    done = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]


def test_a_refund_after_a_restart_finds_the_payment_recorded_with_the_delivery(
    stack: Settings, tmp_path: Path
) -> None:
    peer = start_peer("adyen", tmp_path)
    try:
        env = {**os.environ, **stack.to_env(), **peer.config().to_env(), "COLUMNS": "200"}
        account = getattr(peer, "account", None)
        invoice = sample_invoice(31, "adyen", "EUR", account=account)
        publish(stack, [invoice])
        run_once(stack, env)
        [charged] = [s for s in statuses(stack) if s["invoice_id"] == invoice.id]
        assert charged["status"] == "delivered"
        payment = charged["references"]["pspReference"]

        note = sample_invoice(31, "adyen", "EUR", kind=DocumentKind.CREDIT_NOTE, account=account)
        partial = partial_credit(note, Decimal("5.00"), "a")
        publish(stack, [partial])
        run_once(stack, env)  # a new process: only invoices.status knows the payment
        assert dead_letters(stack) == []
        [refunded] = [s for s in statuses(stack) if s["invoice_id"] == partial.id]
        assert refunded["status"] == "delivered"
        assert refunded["references"]["paymentPspReference"] == payment
        server = peer.server  # type: ignore[attr-defined]
        [refund] = [r for r in server.refunds if r.idempotency_key == partial.idempotency_key]
        assert (refund.payment, refund.amount["value"]) == (payment, 500)
    finally:
        peer.stop()
