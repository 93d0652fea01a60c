"""The shared rail runner against every rail's peer, through the real broker.

Parametrized over every ``connectors/rails/sandbox/peer_*.py``: a new rail is covered
by each of these the moment its peer exists. The runner runs in the test's
process (a thread) except in the crash test, which SIGKILLs ``railyard rails run``.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from connectors.processes import ManagedProcess, spawn
from connectors.rails.config import RailConfig
from connectors.rails.sandbox import RailPeer, peer_names, start_peer
from streams.domain.invoice import Invoice
from streams.settings import Settings
from streams.wire.invoices import encode_invoice
from tests.fixtures.rails.invoices import publish, sample_invoice
from tests.integration.rails_harness import (
    FAST_RETRIES,
    InProcess,
    dead_letters,
    has,
    statuses,
    wait_for,
)

pytestmark = pytest.mark.integration


@pytest.fixture(params=peer_names())
def peer(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RailPeer]:
    directory = tmp_path / "peer"
    directory.mkdir()
    p = start_peer(request.param, directory)
    try:
        yield p
    finally:
        p.stop()


def invoice_for(peer: RailPeer, n: int) -> Invoice:
    """An invoice for a customer the peer knows, when the rail needs one (``peer.account``)."""
    return sample_invoice(n, peer.rail, account=getattr(peer, "account", None))


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
    invoices = [invoice_for(peer, i) for i in range(3)]
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
    invoice = invoice_for(peer, 7)
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
    first, later = invoice_for(peer, 1), invoice_for(peer, 2)
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
    refused, fine = invoice_for(peer, 3), invoice_for(peer, 4)
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
    invoices = [invoice_for(peer, 10 + i) for i in range(3)]
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


def test_transient_failures_past_the_limits_are_failed_and_dead_lettered(
    stack: Settings, running: Callable[..., InProcess], tmp_path: Path
) -> None:
    peer = start_peer("webhook", tmp_path)
    try:
        invoice = invoice_for(peer, 5)
        peer.fail_next(10, 502)
        publish(stack, [invoice])
        running(peer, retry_max_attempts="3")
        wait_for(lambda: has(stack, invoice.id, "failed"), "the invoice to be given up on")
    finally:
        peer.stop()
    steps = [s["status"] for s in statuses(stack) if s["invoice_id"] == invoice.id]
    assert steps == ["retrying", "retrying", "failed"]
    (letter,) = dead_letters(stack)
    assert letter["reason"] == "exhausted" and letter["attempts"] == 3
    assert letter["error_code"] == "http_502"


def test_a_record_that_is_not_an_invoice_is_dead_lettered_and_skipped(
    stack: Settings, running: Callable[..., InProcess], tmp_path: Path
) -> None:
    from confluent_kafka import Producer

    from connectors.kafka import topics

    peer = start_peer("outbox", tmp_path)
    try:
        invoice = invoice_for(peer, 6)
        publish(stack, [invoice])  # creates the topic; the garbage goes after it
        producer = Producer({"bootstrap.servers": stack.kafka_bootstrap})
        producer.produce(topics.topic_name(stack, topics.rail_topic("outbox")), b"not avro")
        producer.flush(10)
        running(peer)
        wait_for(lambda: bool(dead_letters(stack)), "the dead letter")
        wait_for(lambda: has(stack, invoice.id, "delivered"), "the invoice")
    finally:
        peer.stop()
    (letter,) = dead_letters(stack)
    assert letter["reason"] == "undecodable" and letter["original"] == b"not avro"
    assert letter["invoice_id"] is None


def test_the_command_stops_after_max_invoices_and_when_idle(
    stack: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    peer = start_peer("outbox", tmp_path)
    try:
        for name, value in peer.config().to_env().items():
            monkeypatch.setenv(name, value)
        publish(stack, [invoice_for(peer, n) for n in range(3)])
        command = [sys.executable, "-m", "streams.cli", "rails", "run", "outbox"]
        env = {**os.environ, **stack.to_env()}
        done = subprocess.run(
            [*command, "--max-invoices", "2"], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        assert "2 delivered" in done.stdout
        rest = subprocess.run(
            [*command, "--idle-exit", "2"], env=env, capture_output=True, text=True, timeout=120
        )
        assert rest.returncode == 0, rest.stderr
        assert "1 delivered" in rest.stdout, (
            "the third invoice, and only it: the first two were committed"
        )
    finally:
        peer.stop()
