"""docs/rails.md's ninth rail through the shared runner and the real broker.

Nothing but the doc's module and its ``railyard.rails`` entry point: retries, statuses,
dead letters and commits all come from the runner.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from streams.settings import Settings
from tests.fixtures.rails.invoices import publish, sample_invoice
from tests.fixtures.rails.ninth import LedgerPeer, ledger_running
from tests.integration.rails_harness import (
    InProcess,
    dead_letters,
    has,
    statuses,
    wait_for,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def peer(tmp_path: Path) -> Iterator[LedgerPeer]:
    with ledger_running(tmp_path) as p:
        yield p


def test_the_ninth_rail_runs_on_the_shared_runner(
    stack: Settings, peer: LedgerPeer, running: Callable[..., InProcess]
) -> None:
    retried, refused, plain = (sample_invoice(n, "ledger") for n in (1, 2, 3))
    peer.fail_next(1, 503)
    publish(stack, [retried])
    runner = running(peer)
    wait_for(lambda: has(stack, retried.id, "delivered"), "the retried invoice")
    peer.reject_next(422, "unknown customer account")
    publish(stack, [refused, plain])
    wait_for(lambda: has(stack, plain.id, "delivered"), "the invoice after the refused one")
    runner.stop()

    assert [s["status"] for s in statuses(stack) if s["invoice_id"] == retried.id] == [
        "retrying",
        "delivered",
    ]
    assert peer.created(retried.idempotency_key) == 1
    assert peer.created(plain.idempotency_key) == 1
    (letter,) = dead_letters(stack)
    assert letter["invoice_id"] == refused.id
    assert "unknown customer account" in letter["error_message"]
