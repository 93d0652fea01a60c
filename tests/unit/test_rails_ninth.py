"""docs/rails.md's worked example, followed: one module, found through its entry point, is a rail.

The module is the doc's own code block; the delivery goes through the registry to a
local Ledger (no broker here: tests/integration/test_rails_ninth.py runs it
through the runner).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.rails import registry
from connectors.rails.base import PermanentRailError, TransientRailError
from tests.fixtures.rails.invoices import sample_invoice
from tests.fixtures.rails.ninth import MODULE, LedgerPeer, ledger_running


@pytest.fixture
def peer(tmp_path: Path) -> Iterator[LedgerPeer]:
    with ledger_running(tmp_path) as p:
        yield p


def test_the_registry_finds_the_ninth_rail_through_its_entry_point(peer: LedgerPeer) -> None:
    assert MODULE in registry.rail_modules()
    assert "ledger" in registry.rails()
    rail = registry.create("ledger", peer.config())
    assert rail.name == "ledger"


def test_it_delivers_once_per_idempotency_key(peer: LedgerPeer) -> None:
    rail = registry.create("ledger", peer.config())
    invoice = sample_invoice(9, "ledger")
    first, again = rail.deliver(invoice), rail.deliver(invoice)
    assert first.references == again.references == {"ledger_invoice": "LDG-00001"}
    assert peer.created(invoice.idempotency_key) == 1
    assert len(peer.requests()) == 2


def test_its_failures_are_the_two_kinds_the_runner_knows(peer: LedgerPeer) -> None:
    rail = registry.create("ledger", peer.config())
    peer.fail_next(1, 503)
    with pytest.raises(TransientRailError):
        rail.deliver(sample_invoice(1, "ledger"))
    peer.reject_next(422, "unknown customer L-404")
    with pytest.raises(PermanentRailError) as err:
        rail.deliver(sample_invoice(1, "ledger"))
    assert "unknown customer L-404" in str(err.value)
    assert all(token not in str(err.value) for token in peer.secrets)
