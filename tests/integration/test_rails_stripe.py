"""The Stripe rail against stripe-mock (Stripe's OpenAPI spec) through the recording proxy."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from connectors.rails.registry import create
from connectors.rails.sandbox.peer_stripe import StripePeer, start_peer
from streams.domain.invoice import Invoice
from tests.fixtures.rails.invoices import sample_invoice

pytestmark = pytest.mark.integration


@pytest.fixture
def peer(tmp_path: Path) -> Iterator[StripePeer]:
    p = start_peer(tmp_path)
    yield p
    p.stop()


def form(body: bytes) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(body.decode()).items()}


def deliver(peer: StripePeer, invoice: Invoice) -> None:
    create("stripe", peer.config()).deliver(invoice)


def test_every_post_carries_a_step_key_and_stripe_mock_accepts_every_request(
    peer: StripePeer,
) -> None:
    invoice = sample_invoice(5, "stripe", credits=Decimal("3.50"))
    deliver(peer, invoice)
    exchanges = peer.requests()
    assert all(200 <= e.status < 300 for e in exchanges), [(e.path, e.status) for e in exchanges]
    posts = [e for e in exchanges if e.method == "POST"]
    assert all(e.idempotency_key for e in posts)
    steps = [
        e.idempotency_key.split(":", 1)[1]
        for e in posts
        if e.idempotency_key and e.idempotency_key.startswith(invoice.idempotency_key)
    ]
    assert steps == ["invoice", "line-0", "line-1", "line-2", "credit-0", "finalize"]


def test_items_are_minor_units_and_credits_negative(peer: StripePeer) -> None:
    invoice = sample_invoice(5, "stripe", credits=Decimal("3.50"))
    deliver(peer, invoice)
    items = [form(e.body) for e in peer.requests() if e.path == "/v1/invoiceitems"]
    amounts = [int(i["amount"]) for i in items]
    assert amounts == [int(line.amount * 100) for line in invoice.lines] + [-350]
    assert sum(amounts) == int(invoice.total * 100)
    assert all(i["currency"] == "usd" for i in items)


def test_a_customer_without_a_payment_method_is_sent_the_invoice(peer: StripePeer) -> None:
    deliver(peer, sample_invoice(6, "stripe"))
    (created,) = [form(e.body) for e in peer.requests() if e.path == "/v1/invoices"]
    assert created["collection_method"] == "send_invoice"
    assert created["days_until_due"] == "30"
    assert created["pending_invoice_items_behavior"] == "exclude"


def test_an_account_id_is_used_as_the_stripe_customer(peer: StripePeer) -> None:
    deliver(peer, sample_invoice(7, "stripe", account="cus_RailyardKnown1"))
    paths = [(e.method, e.path) for e in peer.requests()]
    assert ("GET", "/v1/customers/cus_RailyardKnown1") in paths
    assert ("POST", "/v1/customers") not in paths


def test_delivering_twice_replays_instead_of_creating(peer: StripePeer) -> None:
    invoice = sample_invoice(8, "stripe")
    deliver(peer, invoice)
    deliver(peer, invoice)
    assert peer.created(invoice.idempotency_key) == 1
    replayed = [e.path for e in peer.requests() if e.replayed]
    assert "/v1/invoices" in replayed
