"""The shared rail runner against every rail's peer, through the real broker.

Parametrized over every ``tests/fixtures/rails/peer_*.py``: a new rail is covered
by each of these the moment its peer exists. The runner runs in the test's
process (a thread) except in the crash test, which SIGKILLs ``railyard rails run``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.kafka import topics
from connectors.processes import ManagedProcess, spawn
from connectors.rails.config import RailConfig
from connectors.rails.registry import create
from connectors.rails.runner import RailRunner
from streams.invoice_records import encode_invoice
from streams.records import INVOICE_DEAD_LETTERS, INVOICE_STATUS
from streams.settings import Settings
from tests.fixtures.rails import RailPeer, peer_names, start_peer
from tests.fixtures.rails.invoices import publish, sample_invoice
from tests.integration.harness import read_topic

pytestmark = pytest.mark.integration

FAST_RETRIES = {"retry_base": "50ms", "retry_cap": "200ms", "retry_max_attempts": "6",
                "retry_max_elapsed": "60s"}  # fmt: skip


@pytest.fixture(params=peer_names())
def peer(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RailPeer]:
    directory = tmp_path / "peer"
    directory.mkdir()
    p = start_peer(request.param, directory)
    try:
        yield p
    finally:
        p.stop()


class InProcess:
    """The real runner in a thread of the test process."""

    def __init__(self, settings: Settings, peer: RailPeer, **config: str) -> None:
        values = {**peer.config().values, **FAST_RETRIES, **config}
        rail_config = RailConfig(peer.rail, values)
        self.runner = RailRunner(
            settings, create(peer.rail, rail_config), rail_config, rand=lambda: 1.0
        )
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.runner.run()
        except BaseException as exc:  # surfaced by stop()
            self.error = exc

    def stop(self) -> None:
        self.runner.stop()
        self.thread.join(60)
        assert not self.thread.is_alive(), "the runner did not stop"
        if self.error is not None:
            raise self.error


@pytest.fixture
def running(stack: Settings) -> Iterator[Callable[..., InProcess]]:
    started: list[InProcess] = []

    def start(peer: RailPeer, **config: str) -> InProcess:
        started.append(InProcess(stack, peer, **config))
        return started[-1]

    yield start
    for r in started:
        r.stop()


def statuses(settings: Settings) -> list[dict[str, Any]]:
    topic = topics.topic_name(settings, topics.INVOICES_STATUS)
    return [INVOICE_STATUS.decode(v) for _, v in read_topic(settings, topic)]


def dead_letters(settings: Settings) -> list[dict[str, Any]]:
    topic = topics.topic_name(settings, topics.INVOICES_DLQ)
    return [INVOICE_DEAD_LETTERS.decode(v) for _, v in read_topic(settings, topic)]


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def has(settings: Settings, invoice_id: str, status: str) -> bool:
    return any(s["invoice_id"] == invoice_id and s["status"] == status for s in statuses(settings))


def assert_no_secrets(peer: RailPeer, *texts: str) -> None:
    for secret in getattr(peer, "secrets", ()):
        for text in texts:
            assert secret not in text, f"a credential of {peer.rail} leaked"


def test_delivers_each_invoice_once_and_commits(
    stack: Settings,
    peer: RailPeer,
    running: Callable[..., InProcess],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="railyard.rails")
    invoices = [sample_invoice(i, peer.rail) for i in range(3)]
    publish(stack, invoices)
    runner = running(peer)
    wait_for(lambda: all(has(stack, i.id, "delivered") for i in invoices), "3 deliveries")
    runner.stop()

    for inv in invoices:
        assert peer.created(inv.idempotency_key) == 1, inv.number
    delivered = [s for s in statuses(stack) if s["status"] == "delivered"]
    assert {s["invoice_id"] for s in delivered} == {i.id for i in invoices}
    assert all(s["references"] and s["rail"] == peer.rail and s["attempt"] == 1 for s in delivered)

    # Offsets were committed: a second run of the same group delivers nothing again.
    seen = len(peer.requests())
    again = running(peer)
    time.sleep(3)
    again.stop()
    assert len(peer.requests()) == seen
    assert_no_secrets(peer, caplog.text, repr(statuses(stack)))


def test_transient_failures_are_retried_into_one_invoice(
    stack: Settings, peer: RailPeer, running: Callable[..., InProcess]
) -> None:
    invoice = sample_invoice(7, peer.rail)
    peer.fail_next(2, 500)
    publish(stack, [invoice])
    running(peer)
    wait_for(lambda: has(stack, invoice.id, "delivered"), "delivery after two failures")

    assert peer.created(invoice.idempotency_key) == 1
    steps = [s for s in statuses(stack) if s["invoice_id"] == invoice.id]
    retrying = [s for s in steps if s["status"] == "retrying"]
    assert len(retrying) == 2
    assert [s["attempt"] for s in retrying] == [1, 2]
    assert all(s["error_message"] and s["retry_at"] for s in retrying)
    assert steps[-1]["status"] == "delivered" and steps[-1]["attempt"] == 3


def test_an_invoice_in_backoff_does_not_hold_up_later_ones(
    stack: Settings, peer: RailPeer, running: Callable[..., InProcess]
) -> None:
    first, later = sample_invoice(1, peer.rail), sample_invoice(2, peer.rail)
    peer.fail_next(1, 503)
    publish(stack, [first])
    running(peer, retry_base="4s", retry_cap="4s")
    wait_for(lambda: has(stack, first.id, "retrying"), "the first invoice to back off")
    publish(stack, [later])
    wait_for(lambda: has(stack, later.id, "delivered"), "the later invoice")
    assert not has(stack, first.id, "delivered"), "the later invoice waited for the first"
    wait_for(lambda: has(stack, first.id, "delivered"), "the first invoice, after its backoff")
    assert peer.created(first.idempotency_key) == 1
    assert peer.created(later.idempotency_key) == 1


def test_a_refused_invoice_is_dead_lettered_with_the_rails_message(
    stack: Settings, peer: RailPeer, running: Callable[..., InProcess]
) -> None:
    refused, fine = sample_invoice(3, peer.rail), sample_invoice(4, peer.rail)
    message = "customer tax id is invalid (test)"
    expected = peer.reject_next(400, message) or message
    publish(stack, [refused])
    publish(stack, [fine])
    running(peer)
    wait_for(lambda: has(stack, fine.id, "delivered"), "the invoice after the refused one")
    wait_for(lambda: has(stack, refused.id, "failed"), "the refused invoice to be failed")

    (letter,) = dead_letters(stack)
    assert letter["invoice_id"] == refused.id and letter["reason"] == "rejected"
    assert expected in letter["error_message"]
    assert letter["original"] == encode_invoice(refused)
    assert letter["rail"] == peer.rail and letter["attempts"] == 1
    assert peer.created(refused.idempotency_key) == 0
    assert peer.created(fine.idempotency_key) == 1
    assert_no_secrets(peer, repr(letter))


def test_killed_mid_delivery_and_restarted_still_one_invoice_per_key(
    stack: Settings, peer: RailPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    invoices = [sample_invoice(10 + i, peer.rail) for i in range(3)]
    for name, value in (
        RailConfig(peer.rail, {**peer.config().values, **FAST_RETRIES}).to_env().items()
    ):
        monkeypatch.setenv(name, value)
    hold = getattr(peer, "hold_next", None)
    if hold is not None:
        hold(1, 60)  # the first invoice reaches the rail; its answer never reaches the runner
    publish(stack, invoices)
    first = spawn(f"rails-{peer.rail}-1", ["rails", "run", peer.rail], stack)
    second: ManagedProcess | None = None
    try:
        wait_for(lambda: peer.created(invoices[0].idempotency_key) == 1, "the rail to hold it")
        first.kill()
        second = spawn(f"rails-{peer.rail}-2", ["rails", "run", peer.rail], stack)
        wait_for(
            lambda: all(has(stack, i.id, "delivered") for i in invoices),
            f"every delivery after the restart:\n{first.log_tail()}",
            timeout=90,
        )
    finally:
        first.kill()
        if second is not None:
            assert second.stop() == 0, second.log_tail()

    for inv in invoices:
        assert peer.created(inv.idempotency_key) == 1, inv.number
    if hold is not None:
        # The held invoice really was delivered twice: once before the kill, once after.
        assert sum(s["invoice_id"] == invoices[0].id for s in statuses(stack)) == 1
        assert len([r for r in peer.requests() if getattr(r, "held", False)]) == 1
    logs = first.log_path.read_text() + (second.log_path.read_text() if second else "")
    assert "delivered" in logs
    assert_no_secrets(peer, logs)
