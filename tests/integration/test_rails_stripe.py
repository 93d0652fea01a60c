"""The Stripe rail against stripe-mock (Stripe's OpenAPI spec) through the recording proxy."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from connectors.rails.base import PermanentRailError
from connectors.rails.registry import create
from connectors.rails.sandbox.peer_stripe import StripePeer, StripeRules, start_peer
from streams.domain.invoice import DocumentKind, Invoice
from tests.fixtures.rails.invoices import partial_credit, sample_invoice

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


# -- credit notes ---------------------------------------------------------------------

CUSTOMER = "cus_RailyardKnown1"


def credit_note_for(n: int) -> tuple[Invoice, Invoice]:
    """An invoice and the credit note giving all of it back, for a known Stripe customer."""
    invoice = sample_invoice(n, "stripe", account=CUSTOMER)
    note = sample_invoice(n, "stripe", kind=DocumentKind.CREDIT_NOTE, account=CUSTOMER)
    assert note.total == -invoice.total
    return invoice, note


def rules(peer: StripePeer) -> StripeRules:
    assert isinstance(peer.proxy.rules, StripeRules)
    return peer.proxy.rules


def test_a_credit_note_is_a_stripe_credit_note_on_its_invoice_created_once(
    peer: StripePeer,
) -> None:
    invoice, note = credit_note_for(21)
    deliver(peer, invoice)
    rail = create("stripe", peer.config())
    first = rail.deliver(note)
    again = [rail.deliver(note), create("stripe", peer.config()).deliver(note)]

    assert peer.created(note.idempotency_key) == 1
    assert all(d.references == first.references for d in again)
    posts = [e for e in peer.requests() if e.method == "POST" and e.path == "/v1/credit_notes"]
    assert all(200 <= e.status < 300 for e in posts)  # stripe-mock took it against the spec
    (sent,) = [form(e.body) for e in posts]
    (stripe_invoice,) = rules(peer).invoices.values()
    assert sent["invoice"] == stripe_invoice["id"] == first.references["invoice"]
    assert stripe_invoice["metadata"]["railyard_invoice"] == invoice.id
    assert int(sent["amount"]) == int(-note.total * 100) > 0  # positive: it already means credit
    assert sent["metadata[railyard_credit_note]"] == note.id
    assert "refund_amount" not in sent  # the invoice is open: the credit lowers what is due
    written = [
        e.path
        for e in peer.requests()
        if e.idempotency_key and e.idempotency_key.startswith(note.idempotency_key)
    ]
    assert written == ["/v1/credit_notes"]  # no negative invoice, no invoice items


def test_credit_notes_on_one_invoice_never_exceed_its_total(peer: StripePeer) -> None:
    invoice, note = credit_note_for(22)
    deliver(peer, invoice)
    rail = create("stripe", peer.config())
    half = (invoice.total / 2).quantize(Decimal("0.01"))
    rail.deliver(partial_credit(note, half, "a"))
    with pytest.raises(PermanentRailError, match="would credit more than") as refused:
        rail.deliver(note)
    assert refused.value.code == "credit_exceeds_invoice"
    assert peer.created(note.idempotency_key) == 0
    rail.deliver(partial_credit(note, invoice.total - half, "b"))
    (stripe_invoice,) = rules(peer).invoices.values()
    assert stripe_invoice["pre_payment_credit_notes_amount"] == int(invoice.total * 100)
    with pytest.raises(PermanentRailError, match="would credit more than"):
        rail.deliver(partial_credit(note, Decimal("0.01"), "c"))


def test_a_paid_invoice_is_credited_by_a_refund(peer: StripePeer) -> None:
    invoice, note = credit_note_for(23)
    deliver(peer, invoice)
    (stripe_invoice,) = rules(peer).invoices.values()
    stripe_invoice["status"] = "paid"  # the customer paid it
    create("stripe", peer.config()).deliver(note)
    (post,) = [e for e in peer.requests() if e.method == "POST" and e.path == "/v1/credit_notes"]
    assert 200 <= post.status < 300  # stripe-mock took refund_amount against the spec
    sent = form(post.body)
    assert sent["refund_amount"] == sent["amount"] == str(int(invoice.total * 100))


def test_a_credit_note_for_an_invoice_stripe_never_got_is_refused(peer: StripePeer) -> None:
    _, note = credit_note_for(24)
    with pytest.raises(PermanentRailError, match="does not hold") as refused:
        create("stripe", peer.config()).deliver(note)
    assert refused.value.code == "credited_invoice_missing"
    assert not [e for e in peer.requests() if e.method == "POST"]
