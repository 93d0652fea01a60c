"""Payment notifications, signed by the stand-ins, land on invoices.status exactly once.

For Stripe (stripe-mock behind the proxy), Adyen and PayPal (the spec-validating
stand-ins): an invoice is delivered by the real runner, the stand-in sends the
notification its rail sends, and ``railyard rails listen``'s receiver verifies it
through the rail's SDK or API and publishes the status; a replay (also to a receiver
started afresh) changes nothing; a forged or stale one is refused and its log holds
no secret.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from connectors.clickhouse.analyst import query
from connectors.clickhouse.delivery import status_sql
from connectors.rails.notifications.receiver import NotificationReceiver, serve
from connectors.rails.sandbox import RailPeer, start_peer
from connectors.rails.sandbox.notify import Signed, notification, send, stripe_signature
from connectors.rails.sandbox.servers import adyen
from streams.settings import Settings
from tests.fixtures.rails.invoices import publish, sample_invoice
from tests.integration.harness import Pipeline
from tests.integration.rails_harness import InProcess, has, statuses, wait_for

pytestmark = pytest.mark.integration

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
"""The receivers' clock starts here and moves a second each time it is read."""


@pytest.fixture(params=["stripe", "adyen", "paypal"])
def rail_peer(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RailPeer]:
    peer = start_peer(request.param, tmp_path)
    yield peer
    peer.stop()


class Listening:
    def __init__(self, settings: Settings, peer: RailPeer) -> None:
        ticks = (AT + timedelta(seconds=n) for n in count())
        self.receiver = NotificationReceiver(settings, peer.config(), lambda: next(ticks))
        self.server = serve(self.receiver)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.receiver.close()


@pytest.fixture
def listening(stack: Settings) -> Iterator[Callable[[RailPeer], Listening]]:
    started: list[Listening] = []

    def start(peer: RailPeer) -> Listening:
        started.append(Listening(stack, peer))
        return started[-1]

    yield start
    for s in started:
        s.stop()


def delivered(stack: Settings, peer: RailPeer, n: int) -> dict[str, Any]:
    """The ``delivered`` step of a fresh invoice the real runner (already running) delivered."""
    invoice = sample_invoice(n, peer.rail, "EUR", account=getattr(peer, "account", None))
    publish(stack, [invoice])
    wait_for(lambda: has(stack, invoice.id, "delivered"), f"{invoice.number} delivered")
    [step] = [s for s in statuses(stack) if s["invoice_id"] == invoice.id]
    return step


def payment_steps(stack: Settings, invoice_id: str) -> list[dict[str, Any]]:
    return [
        s for s in statuses(stack) if s["invoice_id"] == invoice_id and s["status"] != "delivered"
    ]


ACCEPTED = {"adyen": b"[accepted]"}


def test_a_notification_updates_the_status_once_and_a_replay_changes_nothing(
    stack: Settings,
    rail_peer: RailPeer,
    running: Callable[..., InProcess],
    listening: Callable[[RailPeer], Listening],
) -> None:
    running(rail_peer)
    paid, failed = delivered(stack, rail_peer, 1), delivered(stack, rail_peer, 2)
    receiver = listening(rail_peer)
    counted = ("paid", "refunded", "payment_failed")
    before = {s: payments_metric(rail_peer.rail, s) for s in counted}

    signed = notification(rail_peer, "paid", paid)
    code, body = send(receiver.url, signed)
    assert code == 200 and body == ACCEPTED.get(rail_peer.rail, b"ok")
    [step] = payment_steps(stack, paid["invoice_id"])
    assert (step["status"], step["number"], step["customer"]) == (
        "paid",
        paid["number"],
        paid["customer"],
    )
    assert step["references"]["event_id"] == signed.event_id
    assert step["at"] == AT and step["attempt"] == 0

    assert send(receiver.url, signed)[0] == 200  # the rail's redelivery
    assert send(listening(rail_peer).url, signed)[0] == 200  # to a receiver started afresh
    assert [s["status"] for s in payment_steps(stack, paid["invoice_id"])] == ["paid"]

    assert send(receiver.url, notification(rail_peer, "refunded", paid))[0] == 200
    assert send(receiver.url, notification(rail_peer, "payment_failed", failed))[0] == 200
    assert [s["status"] for s in payment_steps(stack, paid["invoice_id"])] == ["paid", "refunded"]
    assert [s["status"] for s in payment_steps(stack, failed["invoice_id"])] == ["payment_failed"]
    # the rail's redelivery was not counted again: one of each, as recorded
    assert {s: payments_metric(rail_peer.rail, s) - before[s] for s in counted} == {
        "paid": 1,
        "refunded": 1,
        "payment_failed": 1,
    }


def payments_metric(rail: str, status: str) -> float:
    labels = {"rail": rail, "status": status}
    return REGISTRY.get_sample_value("railyard_invoice_payments_total", labels) or 0.0


def forged(peer: RailPeer, signed: Signed) -> Signed:
    """``signed`` altered as an attacker could: signed with another key, or its content changed."""
    if peer.rail == "stripe":
        header = stripe_signature(signed.body, "whsec_NotTheEndpointSecret", int(AT.timestamp()))
        return Signed(signed.event_id, signed.body, {"Stripe-Signature": header})
    event = json.loads(signed.body)
    if peer.rail == "adyen":  # the item's signature stays, its amount changes
        item = event["notificationItems"][0]["NotificationRequestItem"]
        item["amount"]["value"] = 1
    else:  # PayPal's headers stay, the event says another invoice was paid
        event["resource"]["invoice"]["detail"]["invoice_number"] = "INV-SOMEONE-ELSE"
    return Signed(signed.event_id, json.dumps(event).encode(), signed.headers)


def test_a_forged_or_stale_notification_is_refused_and_the_log_holds_no_secret(
    stack: Settings,
    rail_peer: RailPeer,
    running: Callable[..., InProcess],
    listening: Callable[[RailPeer], Listening],
    caplog: pytest.LogCaptureFixture,
) -> None:
    running(rail_peer)
    step = delivered(stack, rail_peer, 3)
    receiver = listening(rail_peer)
    caplog.set_level(logging.DEBUG, logger="connectors.rails.notifications")

    genuine = notification(rail_peer, "paid", step)
    fake = forged(rail_peer, genuine)
    assert fake.body != genuine.body or fake.headers != genuine.headers
    assert send(receiver.url, fake)[0] == 401
    if rail_peer.rail == "stripe":  # signed correctly, but long outside the tolerance
        stale = notification(rail_peer, "paid", step, at=1_000_000_000)
        assert send(receiver.url, stale)[0] == 401
    unsigned = Signed(genuine.event_id, genuine.body, {})
    if rail_peer.rail != "adyen":  # Adyen's signature is in the body
        assert send(receiver.url, unsigned)[0] == 401
    assert payment_steps(stack, step["invoice_id"]) == []

    rejected = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
    assert rejected, "a refused notification is logged"
    secrets = [v for k, v in rail_peer.config().values.items() if "secret" in k or "key" in k]
    assert secrets
    for secret in secrets:
        assert secret not in caplog.text

    assert send(receiver.url, genuine)[0] == 200  # the genuine one still counts, once
    assert [s["status"] for s in payment_steps(stack, step["invoice_id"])] == ["paid"]


def test_the_payment_status_shows_in_the_store(
    stack: Settings,
    pipeline: Pipeline,
    tmp_path: Path,
    running: Callable[..., InProcess],
    listening: Callable[[RailPeer], Listening],
) -> None:
    peer = start_peer("adyen", tmp_path / "adyen")
    try:
        running(peer)
        paid, refunded = delivered(stack, peer, 4), delivered(stack, peer, 5)
        receiver = listening(peer)
        assert send(receiver.url, notification(peer, "paid", paid))[0] == 200
        assert send(receiver.url, notification(peer, "paid", refunded))[0] == 200
        assert send(receiver.url, notification(peer, "refunded", refunded))[0] == 200
        pipeline.start("sink")
        pipeline.wait_for(
            lambda: pipeline.count("SELECT count() FROM invoice_status_raw") == 5,
            what="two deliveries and three payment steps in the store",
        )
        rows = {r[1]: r for r in query(stack, status_sql("adyen")).rows}
        assert rows[paid["invoice_id"]][4] == "delivered"
        assert rows[paid["invoice_id"]][9] == "paid"
        assert rows[refunded["invoice_id"]][9] == "refunded"
        assert rows[refunded["invoice_id"]][6]["pspReference"]  # the delivery's refs stay
    finally:
        peer.stop()


def test_railyard_rails_listen_serves_the_rail_from_its_config(
    stack: Settings,
    tmp_path: Path,
    running: Callable[..., InProcess],
) -> None:
    peer = start_peer("adyen", tmp_path / "adyen")
    rail_env = {f"RAILYARD_RAIL_ADYEN_{k.upper()}": v for k, v in peer.config().values.items()}
    env = {**os.environ, **stack.to_env(), **rail_env, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    cli = [sys.executable, "-m", "streams.cli", "rails", "listen", "adyen", "--port", "0"]
    process = subprocess.Popen(cli, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        running(peer)
        step = delivered(stack, peer, 6)
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        assert "listening on http://127.0.0.1:" in line, line
        url = line.split("listening on ")[1].strip()
        assert send(url, notification(peer, "payment_failed", step)) == (200, b"[accepted]")
        assert [s["status"] for s in payment_steps(stack, step["invoice_id"])] == ["payment_failed"]
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
        peer.stop()
    assert process.returncode == 0, stderr.decode()[-2000:]
    assert adyen.HMAC_KEY not in stderr.decode()
