"""Adyen, PayPal, NetSuite, SAP and Salesforce rails against their local servers.

Each rail's connector talks through its SDK to a server on loopback that checks
every request the way the rail does: against the rail's published OpenAPI file
(Adyen, PayPal), or the documented fields and authentication (SAP, NetSuite,
Salesforce). No broker is needed.
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from connectors.rails.base import PermanentRailError, Rail, RailError, TransientRailError
from connectors.rails.config import RailConfig
from connectors.rails.providers import adyen, netsuite, paypal, salesforce, sap, webhook
from connectors.rails.sandbox import peer_webhook
from connectors.rails.sandbox.servers import paypal as pp_server
from connectors.rails.sandbox.servers import salesforce as sf_server
from connectors.rails.sandbox.servers.peer import ServerPeer
from streams.domain.catalog.currency import minor_units
from streams.domain.invoice import DocumentKind, Invoice
from tests.fixtures.rails.invoices import partial_credit, sample_invoice

RAILS = ["adyen", "paypal", "netsuite", "sap", "salesforce"]
MODULES: dict[str, Any] = {
    "adyen": adyen,
    "paypal": paypal,
    "netsuite": netsuite,
    "sap": sap,
    "salesforce": salesforce,
}
CURRENCIES = ["USD", "EUR", "JPY", "KWD"]


def start(rail: str, tmp_path: Path) -> ServerPeer:
    module = __import__(f"connectors.rails.sandbox.peer_{rail}", fromlist=["start_peer"])
    peer: ServerPeer = module.start_peer(tmp_path)
    return peer


@pytest.fixture(params=RAILS)
def peer(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerPeer]:
    p = start(request.param, tmp_path)
    try:
        yield p
    finally:
        p.stop()


ADYEN_PAYMENTS: weakref.WeakKeyDictionary[object, adyen.DeliveredPayments] = (
    weakref.WeakKeyDictionary()
)
"""The pspReferences an Adyen peer's rails made, shared like a runner's store would share them."""


def connect(peer: ServerPeer, **overrides: str) -> Rail:
    config = RailConfig(peer.rail, {**peer.config().values, **overrides})
    if peer.rail == "adyen":
        payments = ADYEN_PAYMENTS.setdefault(peer.server, adyen.DeliveredPayments())
        return adyen.AdyenRail(config, payments)
    rail: Rail = MODULES[peer.rail].create(config)
    return rail


def invoice_for(peer: ServerPeer, n: int = 1, currency: str = "USD", **kwargs: Any) -> Invoice:
    return sample_invoice(
        n, peer.rail, currency, account=peer.account, credits=Decimal(5), **kwargs
    )


def clean(peer: ServerPeer) -> None:
    """Every request met the rail's rules and every answer matched the rail's spec."""
    assert peer.server.violations() == []
    assert peer.server.response_problems == []


def held_total(peer: ServerPeer, invoice: Invoice) -> Decimal:
    """What the rail holds as the invoice's total, read off the server's own state."""
    server: Any = peer.server
    key = invoice.idempotency_key
    if peer.rail == "adyen":
        (payment,) = [p for p in server.payments if p.idempotency_key == key]
        return Decimal(payment.amount["value"]).scaleb(-(minor_units(invoice.currency) or 0))
    if peer.rail == "paypal":
        return Decimal(server.invoices[server.request_ids[key]]["amount"]["value"])
    if peer.rail == "netsuite":
        (record,) = [r for (_, ext), r in server.records.items() if ext == key]
        return sum(
            (Decimal(str(line["amount"])) for line in record["body"]["item"]["items"]), Decimal(0)
        )
    if peer.rail == "sap":
        (document,) = [
            d
            for d in server.documents["A_SalesOrder"]
            if d["PurchaseOrderByCustomer"] == sap.customer_reference(key)
        ]
        return Decimal(document["TotalNetAmount"])
    (record,) = [r for r in server.records["Invoice__c"].values() if r["Railyard_Key__c"] == key]
    return Decimal(str(record["Total__c"]))


# -- delivery ---------------------------------------------------------------------


@pytest.mark.parametrize("currency", CURRENCIES)
def test_delivers_each_currency_once_however_often_it_is_sent(
    peer: ServerPeer, currency: str
) -> None:
    rail = connect(peer)
    invoice = invoice_for(peer, currency=currency)
    if peer.rail == "paypal" and currency == "KWD":
        # PayPal offers no three-decimal currency: its refusal is a permanent one.
        with pytest.raises(PermanentRailError, match="CURRENCY_NOT_SUPPORTED"):
            rail.deliver(invoice)
        assert peer.created(invoice.idempotency_key) == 0
        return
    first = rail.deliver(invoice)
    again = [rail.deliver(invoice), connect(peer).deliver(invoice)]  # a retry, a restarted worker

    assert peer.created(invoice.idempotency_key) == 1
    assert all(d.references == first.references for d in again)
    assert first.rail == peer.rail and first.invoice_id == invoice.id and first.references
    assert held_total(peer, invoice) == invoice.total
    assert rail.status(first)
    clean(peer)


# -- credits on the rail that billed ------------------------------------------------

CREDIT_RAILS = ["netsuite", "salesforce", "paypal", "adyen"]


def paid_invoice_and_its_credit_note(peer: ServerPeer, n: int = 11) -> tuple[Invoice, Invoice]:
    """An invoice delivered to the peer, and the credit note giving all of it back."""
    invoice = sample_invoice(n, peer.rail, account=peer.account)
    delivery = connect(peer).deliver(invoice)
    if peer.rail == "paypal":  # a refund gives back money the payer paid
        peer.server.pay(delivery.references["invoice"])  # type: ignore[attr-defined]
    note = sample_invoice(n, peer.rail, kind=DocumentKind.CREDIT_NOTE, account=peer.account)
    assert note.total == -invoice.total
    return invoice, note


def credit_document(peer: ServerPeer, note: Invoice) -> tuple[Decimal, str]:
    """(amount, the credited invoice's reference) of the rail's credit document for ``note``."""
    server: Any = peer.server
    key = note.idempotency_key
    if peer.rail == "netsuite":
        memo = server.records[("creditMemo", key)]
        lines = memo["body"]["item"]["items"]
        amount = sum((Decimal(str(li["amount"])) for li in lines), Decimal(0))
        (applied,) = memo["body"]["apply"]["items"]
        assert Decimal(str(applied["amount"])) == amount
        return amount, str(applied["doc"]["id"])
    if peer.rail == "salesforce":
        (record,) = [
            r for r in server.records["Invoice__c"].values() if r["Railyard_Key__c"] == key
        ]
        assert record["Kind__c"] == "credit_note"
        lines = [
            r for r in server.records["InvoiceLine__c"].values() if r["Invoice__c"] == record["Id"]
        ]
        assert sum((Decimal(str(r["Amount__c"])) for r in lines), Decimal(0)) == Decimal(
            str(record["Subtotal__c"])
        )
        return Decimal(str(record["Total__c"])), str(record["Credited_Invoice__c"])
    if peer.rail == "paypal":
        invoice_id, refund_id = server.refunds[key]
        refunds = server.invoices[invoice_id]["refunds"]["transactions"]
        (refund,) = [r for r in refunds if r["refund_id"] == refund_id]
        return Decimal(refund["amount"]["value"]), invoice_id
    if peer.rail == "adyen":
        (adyen_refund,) = [r for r in server.refunds if r.idempotency_key == key]
        value = Decimal(adyen_refund.amount["value"]).scaleb(-(minor_units(note.currency) or 0))
        return value, adyen_refund.payment
    raise AssertionError(f"no credit document reader for {peer.rail}")


def invoice_reference(peer: ServerPeer, invoice: Invoice) -> str:
    """The credited invoice's id at the rail, read off the server's own state."""
    server: Any = peer.server
    if peer.rail == "netsuite":
        return str(server.records[("invoice", invoice.idempotency_key)]["id"])
    if peer.rail == "salesforce":
        records = server.records["Invoice__c"].values()
        (record,) = [r for r in records if r["Railyard_Key__c"] == invoice.idempotency_key]
        return str(record["Id"])
    if peer.rail == "paypal":
        return str(server.request_ids[invoice.idempotency_key])
    if peer.rail == "adyen":
        (payment,) = [p for p in server.payments if p.idempotency_key == invoice.idempotency_key]
        return str(payment.psp_reference)
    raise AssertionError(f"no invoice reader for {peer.rail}")


@pytest.mark.parametrize("rail_name", CREDIT_RAILS)
def test_a_credit_note_is_the_rails_credit_document_on_the_invoice_it_credits(
    rail_name: str, tmp_path: Path
) -> None:
    peer = start(rail_name, tmp_path)
    try:
        invoice, note = paid_invoice_and_its_credit_note(peer)
        first = connect(peer).deliver(note)
        again = [connect(peer).deliver(note), connect(peer).deliver(note)]

        assert peer.created(note.idempotency_key) == 1
        assert all(d.references == first.references for d in again)
        amount, credited = credit_document(peer, note)
        assert amount == -note.total > 0  # positive: the document already means credit
        assert credited == invoice_reference(peer, invoice)
        clean(peer)
    finally:
        peer.stop()


@pytest.mark.parametrize("rail_name", CREDIT_RAILS)
def test_credits_on_one_invoice_never_exceed_its_total(rail_name: str, tmp_path: Path) -> None:
    peer = start(rail_name, tmp_path)
    try:
        invoice, note = paid_invoice_and_its_credit_note(peer, n=12)
        half = (invoice.total / 2).quantize(Decimal("0.01"))
        first = partial_credit(note, half, "a")
        connect(peer).deliver(first)
        connect(peer).deliver(first)  # a redelivery is not a second credit
        with pytest.raises(PermanentRailError, match="would credit more than") as refused:
            connect(peer).deliver(note)  # the rest and then some
        assert refused.value.code == "credit_exceeds_invoice"
        assert peer.created(note.idempotency_key) == 0
        rest = partial_credit(note, invoice.total - half, "b")
        connect(peer).deliver(rest)  # exactly the rest fits
        assert credit_document(peer, first)[0] + credit_document(peer, rest)[0] == invoice.total
        with pytest.raises(PermanentRailError, match="would credit more than"):
            connect(peer).deliver(partial_credit(note, Decimal("0.01"), "c"))
        clean(peer)
    finally:
        peer.stop()


def _doubled_sign_netsuite(monkeypatch: pytest.MonkeyPatch) -> None:
    build = netsuite.record_body

    def negative(invoice: Invoice, config: RailConfig, applies_to: str | None = None) -> Any:
        body: dict[str, Any] = build(invoice, config, applies_to)
        for line in body["item"]["items"]:
            line["amount"] = -line["amount"]
        return body

    monkeypatch.setattr(netsuite, "record_body", negative)


def _doubled_sign_salesforce(monkeypatch: pytest.MonkeyPatch) -> None:
    build = salesforce.invoice_record

    def negative(invoice: Invoice, credited: str | None = None) -> Any:
        record: dict[str, Any] = build(invoice, credited)
        record["Total__c"] = -record["Total__c"]
        return record

    monkeypatch.setattr(salesforce, "invoice_record", negative)


@pytest.mark.parametrize(
    ("rail_name", "doubled", "expected"),
    [
        ("netsuite", _doubled_sign_netsuite, "Transaction total can not be negative"),
        ("salesforce", _doubled_sign_salesforce, "total may not be negative"),
    ],
)
def test_the_stand_ins_refuse_a_credit_document_with_the_sign_doubled(
    rail_name: str,
    doubled: Callable[[pytest.MonkeyPatch], None],
    expected: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    peer = start(rail_name, tmp_path)
    try:
        _, note = paid_invoice_and_its_credit_note(peer, n=19)
        doubled(monkeypatch)
        with pytest.raises(PermanentRailError, match=expected):
            connect(peer).deliver(note)
        assert peer.server.violations()
        assert peer.created(note.idempotency_key) == 0
    finally:
        peer.stop()


def test_netsuite_itself_refuses_to_apply_more_than_the_invoice_owes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    peer = start("netsuite", tmp_path)
    try:
        invoice, note = paid_invoice_and_its_credit_note(peer, n=14)
        connect(peer).deliver(partial_credit(note, Decimal("1.00"), "a"))
        monkeypatch.setattr(netsuite, "check_within", lambda *_: None)  # skip the rail's check
        with pytest.raises(PermanentRailError, match="exceeds the amount due"):
            connect(peer).deliver(note)
        assert peer.server.violations()
        assert peer.created(note.idempotency_key) == 0
    finally:
        peer.stop()


def test_adyen_refunds_only_a_payment_it_knows_and_that_was_captured(tmp_path: Path) -> None:
    peer = start("adyen", tmp_path)
    try:
        note = sample_invoice(16, "adyen", kind=DocumentKind.CREDIT_NOTE, account=peer.account)
        with pytest.raises(PermanentRailError, match="not known") as unknown:
            connect(peer).deliver(note)  # no payment collected that invoice
        assert unknown.value.code == "payment_reference_unknown"
        assert peer.requests() == []
        invoice, note = paid_invoice_and_its_credit_note(peer, n=17)
        refunded = connect(peer).deliver(note)
        (sent,) = [r for r in peer.requests() if r.path.endswith("/refunds")]
        assert sent.headers["idempotency-key"] == note.idempotency_key
        assert sent.path == f"/v72/payments/{refunded.references['paymentPspReference']}/refunds"
        assert sent.json()["amount"] == {"currency": "USD", "value": int(invoice.total * 100)}
        assert refunded.status == "received"
        # Adyen itself refuses more than was captured, whatever the rail believes.
        more = partial_credit(note, Decimal("0.01"), "x")
        with pytest.raises(PermanentRailError, match="would credit more than") as refused:
            connect(peer).deliver(more)
        assert refused.value.code == "credit_exceeds_invoice"
        assert peer.server.violations() == []
    finally:
        peer.stop()


def test_a_webhook_credit_note_says_so_and_names_its_invoice_once(tmp_path: Path) -> None:
    peer = peer_webhook.start_peer(tmp_path)
    try:
        invoice = sample_invoice(18, "webhook")
        note = sample_invoice(18, "webhook", kind=DocumentKind.CREDIT_NOTE)
        rail = webhook.WebhookRail(peer.config())
        rail.deliver(invoice)
        first = rail.deliver(note)
        assert webhook.WebhookRail(peer.config()).deliver(note).references == first.references
        assert peer.created(note.idempotency_key) == 1
        document = peer.receiver.documents[note.idempotency_key]
        assert document["kind"] == "credit_note"
        assert document["credited_invoice"]["idempotency_key"] == invoice.idempotency_key
        assert invoice.idempotency_key in peer.receiver.documents  # the invoice it names
    finally:
        peer.stop()


@pytest.mark.parametrize("method", ["BANK_TRANSFER", "PAYPAL"])
def test_paypal_records_the_refund_of_a_payment_made_outside_paypal_and_only_once_paid(
    method: str, tmp_path: Path
) -> None:
    peer = start("paypal", tmp_path)
    try:
        invoice = sample_invoice(15, "paypal", account=peer.account)
        delivery = connect(peer).deliver(invoice)
        note = sample_invoice(15, "paypal", kind=DocumentKind.CREDIT_NOTE, account=peer.account)
        with pytest.raises(PermanentRailError, match="CANNOT_PROCESS_REFUNDS"):
            connect(peer).deliver(note)  # nobody paid it: nothing to give back
        assert peer.created(note.idempotency_key) == 0
        # Recorded by the merchant (even one saying PAYPAL): no capture to refund.
        peer.server.record_payment(delivery.references["invoice"], method)  # type: ignore[attr-defined]
        refunded = connect(peer).deliver(note)
        assert refunded.status == "REFUNDED"
        assert refunded.references["invoice"] == delivery.references["invoice"]
        assert "capture" not in refunded.references
        refunds = [r for r in peer.requests() if r.path.endswith("/refunds")]
        assert {r.headers["paypal-request-id"] for r in refunds} == {note.idempotency_key}
        assert refunds[-1].json()["amount"] == {"currency_code": "USD", "value": f"{invoice.total}"}
        assert not [r for r in peer.requests() if r.path.startswith("/v2/payments/")]
        clean(peer)
    finally:
        peer.stop()


def paypal_capture(peer: ServerPeer, invoice: Invoice) -> Any:
    """The stand-in's capture paying ``invoice`` (there is one)."""
    server: Any = peer.server
    invoice_id = server.request_ids[invoice.idempotency_key]
    (capture,) = [c for c in server.payments.captures.values() if c.invoice_id == invoice_id]
    return capture


def test_paypal_refunds_a_payment_captured_through_paypal_partly_then_fully(
    tmp_path: Path,
) -> None:
    peer = start("paypal", tmp_path)
    server: Any = peer.server
    try:
        invoice = sample_invoice(20, "paypal", account=peer.account)
        delivery = connect(peer).deliver(invoice)
        capture_id = server.pay(delivery.references["invoice"])
        note = sample_invoice(20, "paypal", kind=DocumentKind.CREDIT_NOTE, account=peer.account)
        half = (invoice.total / 2).quantize(Decimal("0.01"))
        first = partial_credit(note, half, "a")

        refunded = connect(peer).deliver(first)
        again = connect(peer).deliver(first)  # redelivered: same PayPal-Request-Id, no new refund

        assert again.references == refunded.references
        assert refunded.references["capture"] == capture_id
        assert refunded.references["invoice"] == delivery.references["invoice"]
        assert refunded.references["refund"] == server.payments.refunds[first.idempotency_key].id
        assert refunded.status == "PARTIALLY_REFUNDED"
        capture = paypal_capture(peer, invoice)
        assert (capture.amount, capture.refunded) == (invoice.total, half)
        assert peer.created(first.idempotency_key) == 1
        sent = [r for r in peer.requests() if r.path.startswith("/v2/payments/")]
        assert {r.path for r in sent} == {f"/v2/payments/captures/{capture_id}/refund"}
        assert [r.headers["paypal-request-id"] for r in sent] == [first.idempotency_key] * 2
        assert sent[0].json()["amount"] == {"currency_code": "USD", "value": f"{half}"}
        assert sent[0].json()["invoice_id"] == first.number

        rest = partial_credit(note, invoice.total - half, "b")
        assert connect(peer).deliver(rest).status == "REFUNDED"
        assert capture.refunded == capture.amount and capture.status == "REFUNDED"
        assert credit_document(peer, first)[0] + credit_document(peer, rest)[0] == invoice.total

        with pytest.raises(PermanentRailError, match="would credit more than") as refused:
            connect(peer).deliver(partial_credit(note, Decimal("0.01"), "c"))
        assert refused.value.code == "credit_exceeds_invoice"
        assert capture.refunded == capture.amount  # nothing more went back
        assert not [r for r in peer.requests() if r.path.endswith("/refunds")]  # none recorded
        clean(peer)
    finally:
        peer.stop()


def test_paypal_refunds_a_capture_in_a_currency_without_decimals(tmp_path: Path) -> None:
    peer = start("paypal", tmp_path)
    server: Any = peer.server
    try:
        invoice = sample_invoice(24, "paypal", "JPY", account=peer.account)
        server.pay(connect(peer).deliver(invoice).references["invoice"])
        note = sample_invoice(
            24, "paypal", "JPY", kind=DocumentKind.CREDIT_NOTE, account=peer.account
        )
        assert connect(peer).deliver(note).status == "REFUNDED"
        (sent,) = [r for r in peer.requests() if r.path.startswith("/v2/payments/")]
        assert sent.json()["amount"] == {"currency_code": "JPY", "value": f"{invoice.total:f}"}
        assert "." not in sent.json()["amount"]["value"]
        assert paypal_capture(peer, invoice).refunded == invoice.total
        clean(peer)
    finally:
        peer.stop()


def test_the_paypal_stand_in_itself_refuses_to_refund_more_than_was_captured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    peer = start("paypal", tmp_path)
    server: Any = peer.server
    try:
        invoice, note = paid_invoice_and_its_credit_note(peer, n=21)
        connect(peer).deliver(partial_credit(note, Decimal("1.00"), "a"))
        # The invoice does not show that refund yet: only PayPal's own refusal says so.
        monkeypatch.setattr(paypal, "refund_limits", lambda *_: (Decimal(0), invoice.total))
        with pytest.raises(PermanentRailError, match="REFUND_AMOUNT_EXCEEDED") as refused:
            connect(peer).deliver(note)
        assert refused.value.code == "credit_exceeds_invoice"
        assert peer.created(note.idempotency_key) == 0
        assert paypal_capture(peer, invoice).refunded == Decimal("1.00")
        assert server.response_problems == []
    finally:
        peer.stop()


def test_paypal_refuses_a_note_on_an_invoice_paid_in_several_paypal_payments(
    tmp_path: Path,
) -> None:
    peer = start("paypal", tmp_path)
    server: Any = peer.server
    try:
        invoice = sample_invoice(22, "paypal", account=peer.account)
        invoice_id = connect(peer).deliver(invoice).references["invoice"]
        server.pay(invoice_id, Decimal("10.00"))
        server.pay(invoice_id)  # the rest
        note = sample_invoice(22, "paypal", kind=DocumentKind.CREDIT_NOTE, account=peer.account)
        with pytest.raises(PermanentRailError, match="2 PayPal payments") as refused:
            connect(peer).deliver(note)
        assert refused.value.code == "several_paypal_payments"
        assert not [r for r in peer.requests() if "refund" in r.path]
    finally:
        peer.stop()


@pytest.mark.parametrize("rail_name", ["netsuite", "salesforce", "paypal"])
def test_a_credit_note_for_an_invoice_the_rail_never_got_is_refused(
    rail_name: str, tmp_path: Path
) -> None:
    peer = start(rail_name, tmp_path)
    try:
        note = sample_invoice(13, rail_name, kind=DocumentKind.CREDIT_NOTE, account=peer.account)
        with pytest.raises(PermanentRailError, match="does not hold") as refused:
            connect(peer).deliver(note)
        assert refused.value.code == "credited_invoice_missing"
        assert peer.created(note.idempotency_key) == 0
    finally:
        peer.stop()


# -- the servers' validation bites -----------------------------------------------


def _break_adyen(body: dict[str, Any]) -> None:
    body["amount"]["value"] = "12.34"  # minor units are an integer


def _break_paypal(body: dict[str, Any]) -> None:
    body["status"] = "PAID"  # read-only in the spec
    del body["items"][0]["unit_amount"]["currency_code"]


def _break_netsuite(body: dict[str, Any]) -> None:
    body["discountTotal"] = 1.0  # not a field the rail may set
    del body["item"]["items"][0]["amount"]


def _break_sap(body: dict[str, Any]) -> None:
    body["SalesOrganization"] = "TOO-LONG"  # MaxLength 4
    del body["to_Item"][0]["Material"]  # required on an item


def _break_salesforce(body: dict[str, Any]) -> None:
    body["Invoice_Total__c"] = 1.0  # no such field on Invoice__c


BREAKERS: dict[str, tuple[str, Callable[[dict[str, Any]], None], str]] = {
    "adyen": ("payment_request", _break_adyen, "not of type 'integer'"),
    "paypal": ("invoice_body", _break_paypal, "INVALID_PARAMETER_SYNTAX"),
    "netsuite": ("record_body", _break_netsuite, "Invalid field name: discountTotal"),
    "sap": ("document", _break_sap, "SalesOrganization: longer than MaxLength 4"),
    "salesforce": ("invoice_record", _break_salesforce, "INVALID_FIELD"),
}


def test_a_malformed_request_is_refused_by_the_rails_rules(
    peer: ServerPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    builder, breaker, expected = BREAKERS[peer.rail]
    module = MODULES[peer.rail]
    build = getattr(module, builder)

    def broken(*args: Any) -> dict[str, Any]:
        body: dict[str, Any] = build(*args)
        breaker(body)
        return body

    monkeypatch.setattr(module, builder, broken)
    invoice = invoice_for(peer)
    with pytest.raises(PermanentRailError, match=expected):
        connect(peer).deliver(invoice)
    assert peer.server.violations(), "the server let a malformed request through"
    assert peer.created(invoice.idempotency_key) == 0


# -- failures -----------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 503, 429])
def test_a_busy_or_failing_rail_is_a_transient_error(peer: ServerPeer, status: int) -> None:
    rail = connect(peer)
    invoice = invoice_for(peer)
    peer.fail_next(1, status)
    with pytest.raises(TransientRailError):
        rail.deliver(invoice)
    rail.deliver(invoice)
    assert peer.created(invoice.idempotency_key) == 1
    clean(peer)


def test_a_refusal_is_permanent_and_carries_the_rails_message(peer: ServerPeer) -> None:
    rail = connect(peer)
    invoice = invoice_for(peer)
    message = "customer tax id is invalid (test)"
    peer.reject_next(400, message)
    with pytest.raises(PermanentRailError) as refused:
        rail.deliver(invoice)
    assert message in str(refused.value)
    assert peer.created(invoice.idempotency_key) == 0
    assert rail.deliver(invoice).references


def test_credentials_never_appear_in_errors_or_reprs(peer: ServerPeer) -> None:
    rail = connect(peer)
    errors: list[RailError] = []
    for status in (500, 400):
        (peer.fail_next if status == 500 else peer.reject_next)(1, status)  # type: ignore[operator]
        with pytest.raises(RailError) as caught:
            rail.deliver(invoice_for(peer, n=status))
        errors.append(caught.value)
    secret_key = {
        "adyen": "api_key",
        "paypal": "client_secret",
        "netsuite": "token_secret",
        "sap": "password",
        "salesforce": "client_secret",
    }[peer.rail]
    wrong = "wrong-credential-value-0xDEADBEEF"
    with pytest.raises(PermanentRailError) as refused:
        connect(peer, **{secret_key: wrong}).deliver(invoice_for(peer, n=3))
    errors.append(refused.value)

    texts = [repr(rail), repr(peer.config()), *(f"{e!s} {e!r} {e.code}" for e in errors)]
    for secret in (*peer.secrets, wrong):
        assert not any(secret in text for text in texts), f"a credential of {peer.rail} leaked"


# -- each rail's own mechanism ------------------------------------------------------


def test_adyen_sends_the_key_as_idempotency_key_and_refusals_are_permanent(tmp_path: Path) -> None:
    peer = start("adyen", tmp_path)
    try:
        rail = connect(peer)
        invoice = invoice_for(peer)
        rail.deliver(invoice)
        (sent,) = peer.requests()
        assert sent.headers["idempotency-key"] == invoice.idempotency_key
        body = sent.json()
        assert body["shopperInteraction"] == "ContAuth"
        assert body["recurringProcessingModel"] == "UnscheduledCardOnFile"
        assert body["reference"] == invoice.number

        refused = dataclasses.replace(invoice_for(peer, n=2), account="refuse-shopper-7")
        with pytest.raises(PermanentRailError, match="Refused.*Not enough balance") as caught:
            rail.deliver(refused)
        assert caught.value.code == "Refused"
        zero = dataclasses.replace(
            invoice, credits_total=invoice.subtotal, total=Decimal(0), credits=()
        )
        assert rail.deliver(zero).status == "nothing_to_charge"
    finally:
        peer.stop()


def test_paypal_replays_the_request_id_and_finds_a_duplicate_number(tmp_path: Path) -> None:
    peer = start("paypal", tmp_path)
    try:
        rail = connect(peer)
        invoice = invoice_for(peer)
        delivery = rail.deliver(invoice)
        assert delivery.status == "SENT"
        creates = [r for r in peer.requests() if r.path == "/v2/invoicing/invoices"]
        assert creates[0].headers["paypal-request-id"] == invoice.idempotency_key
        # The same invoice under another request id (the id store expired): PayPal refuses
        # the duplicate number and the rail carries on with the invoice it already has.
        moved = dataclasses.replace(invoice, idempotency_key="railyard-request-id-expired")
        assert rail.deliver(moved).references == delivery.references
        assert len(peer.server.invoices) == 1  # type: ignore[attr-defined]
        clean(peer)
    finally:
        peer.stop()


def test_netsuite_upserts_by_external_id_without_doubling_lines(tmp_path: Path) -> None:
    peer = start("netsuite", tmp_path)
    try:
        rail = connect(peer)
        invoice = invoice_for(peer)
        for _ in range(3):
            rail.deliver(invoice)
        puts = [r for r in peer.requests() if r.method == "PUT"]
        assert {r.path for r in puts} == {
            f"/services/rest/record/v1/invoice/eid:{invoice.idempotency_key}"
        }
        assert 'oauth_signature_method="HMAC-SHA256"' in puts[0].headers["authorization"]
        (record,) = peer.server.records.values()  # type: ignore[attr-defined]
        assert len(record["body"]["item"]["items"]) == len(invoice.lines) + len(invoice.credits)
        clean(peer)
    finally:
        peer.stop()


def test_sap_fetches_a_csrf_token_and_does_not_create_twice(tmp_path: Path) -> None:
    peer = start("sap", tmp_path)
    try:
        rail = connect(peer)
        invoice = invoice_for(peer)
        rail.deliver(invoice)
        peer.server._sessions.clear()  # type: ignore[attr-defined]  # SAP dropped the session
        other = invoice_for(peer, n=2)
        rail.deliver(other)
        rail.deliver(invoice)
        posts = [r for r in peer.requests() if r.method == "POST"]
        assert [r.status for r in posts] == [201, 403, 201]  # one refetch of the token
        assert peer.requests()[0].path.endswith("/$metadata")
        assert peer.created(invoice.idempotency_key) == peer.created(other.idempotency_key) == 1
    finally:
        peer.stop()


def _sap_documents(peer: ServerPeer, entity_set: str, invoice: Invoice) -> list[dict[str, Any]]:
    reference = sap.customer_reference(invoice.idempotency_key)
    documents: list[dict[str, Any]] = peer.server.documents[entity_set]  # type: ignore[attr-defined]
    return [d for d in documents if d["PurchaseOrderByCustomer"] == reference]


def test_sap_invoice_is_one_sales_order_priced_by_conditions(tmp_path: Path) -> None:
    peer = start("sap", tmp_path)
    try:
        invoice = invoice_for(peer, currency="JPY")
        first = connect(peer).deliver(invoice)
        assert connect(peer).deliver(invoice).references == first.references
        (order,) = _sap_documents(peer, "A_SalesOrder", invoice)
        assert first.references == {"sales_order": order["SalesOrder"]}
        assert len(order["PurchaseOrderByCustomer"]) <= 35
        assert order["SalesOrderType"] == "OR" and order["SoldToParty"] == peer.account
        # One item per line that bills, priced by one PPR0 condition of its amount...
        billed = [line for line in invoice.lines if line.amount > 0]
        assert [i["SalesOrderItemText"] for i in order["to_Item"]] == [
            line.description for line in billed
        ]
        prices = [i["to_PricingElement"] for i in order["to_Item"]]
        assert [[(p["ConditionType"], p["ConditionRateValue"]) for p in ps] for ps in prices] == [
            [("PPR0", f"{line.amount:f}")] for line in billed
        ]
        # ...and what lowers the total (the discount, the prepaid credit) as HB00 on the header.
        lowered = [line.amount for line in invoice.lines if line.amount < 0]
        lowered += [-c.amount for c in invoice.credits]
        assert [
            (p["ConditionType"], Decimal(p["ConditionRateValue"]))
            for p in order["to_PricingElement"]
        ] == [("HB00", amount) for amount in lowered]
        assert Decimal(order["TotalNetAmount"]) == invoice.total
        assert len([r for r in peer.requests() if r.method == "POST"]) == 1
        clean(peer)
    finally:
        peer.stop()


def test_sap_credit_note_is_a_positive_credit_memo_request_on_its_sales_order(
    tmp_path: Path,
) -> None:
    peer = start("sap", tmp_path)
    try:
        invoice, note = paid_invoice_and_its_credit_note(peer)
        order = connect(peer).deliver(invoice).references["sales_order"]
        first = connect(peer).deliver(note)
        assert connect(peer).deliver(note).references == first.references  # once
        (memo,) = _sap_documents(peer, "A_CreditMemoRequest", note)
        assert peer.created(note.idempotency_key) == 1
        assert first.references == {
            "credit_memo_request": memo["CreditMemoRequest"],
            "credited_sales_order": order,
        }
        assert memo["CreditMemoRequestType"] == "G2" and memo["SDDocumentReason"] == "051"
        assert (memo["ReferenceSDDocument"], memo["ReferenceSDDocumentCategory"]) == (order, "C")
        rates = [
            Decimal(p["ConditionRateValue"])
            for i in memo["to_Item"]
            for p in i["to_PricingElement"]
        ]
        assert rates and all(rate > 0 for rate in rates)  # positive: the document means credit
        assert Decimal(memo["TotalNetAmount"]) == -note.total == invoice.total
        assert connect(peer).status(first) == "A"
        clean(peer)
    finally:
        peer.stop()


def test_sap_credits_stay_within_the_order_and_need_it(tmp_path: Path) -> None:
    peer = start("sap", tmp_path)
    try:
        orphan = sample_invoice(13, "sap", kind=DocumentKind.CREDIT_NOTE, account=peer.account)
        with pytest.raises(PermanentRailError) as missing:
            connect(peer).deliver(orphan)
        assert missing.value.code == "credited_invoice_missing"
        invoice, note = paid_invoice_and_its_credit_note(peer, n=12)
        connect(peer).deliver(invoice)
        half = (invoice.total / 2).quantize(Decimal("0.01"))
        connect(peer).deliver(partial_credit(note, half, "a"))
        with pytest.raises(PermanentRailError, match="would credit more than") as refused:
            connect(peer).deliver(note)
        assert refused.value.code == "credit_exceeds_invoice"
        connect(peer).deliver(partial_credit(note, invoice.total - half, "b"))  # exactly the rest
        assert peer.created(note.idempotency_key) == 0
        assert [r.method for r in peer.requests()].count("POST") == 3  # invoice, a, b
        clean(peer)
    finally:
        peer.stop()


def test_sap_stand_in_refuses_what_sap_refuses_in_gateways_error_shape(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    peer = start("sap", tmp_path)
    try:
        build = sap.document

        def without_sold_to(*args: Any) -> dict[str, Any]:
            body = build(*args)
            del body["SoldToParty"]
            body["to_Item"][0]["SalesOrderItemText"] = "x" * 41
            return body

        monkeypatch.setattr(sap, "document", without_sold_to)
        invoice = invoice_for(peer)
        with pytest.raises(PermanentRailError, match="required property SoldToParty") as refused:
            connect(peer).deliver(invoice)
        assert "400 /IWBEP/CM_MGW_RT/022 on create" in str(refused.value)  # Gateway's error
        (post,) = [r for r in peer.requests() if r.method == "POST"]
        assert post.status == 400
        assert "to_Item[0]/SalesOrderItemText: longer than MaxLength 40" in post.violations
        assert peer.created(invoice.idempotency_key) == 0
    finally:
        peer.stop()


def test_salesforce_lines_are_upserted_by_external_id(tmp_path: Path) -> None:
    peer = start("salesforce", tmp_path)
    try:
        rail = connect(peer)
        invoice = invoice_for(peer)
        delivery = rail.deliver(invoice)
        rail.deliver(invoice)
        lines = peer.server.records["InvoiceLine__c"].values()  # type: ignore[attr-defined]
        assert len(lines) == len(invoice.lines)
        assert {line["Invoice__c"] for line in lines} == {delivery.references["Invoice__c"]}
        assert rail.status(delivery) == "Issued"
        # A ready access token instead of the client-credentials login.
        direct = connect(peer, access_token=sf_server.ACCESS_TOKEN, instance_url=peer.server.url)
        assert direct.status(delivery) == "Issued"
        assert [r.path for r in peer.requests()].count("/services/oauth2/token") == 1
        clean(peer)
    finally:
        peer.stop()


def test_the_paypal_stand_in_checks_a_capture_refund_against_payments_v2(tmp_path: Path) -> None:
    peer = start("paypal", tmp_path)
    server: Any = peer.server
    try:
        invoice, _ = paid_invoice_and_its_credit_note(peer, n=23)
        capture = paypal_capture(peer, invoice)
        url = f"{server.url}/v2/payments/captures/{capture.id}/refund"
        bearer = {"Authorization": f"Bearer {pp_server.ACCESS_TOKEN}"}
        bad = {"amount": {"currency_code": "USD", "value": "ten"}, "note_to_payer": ""}
        answer = requests.post(url, json=bad, headers=bearer, timeout=5)
        assert answer.status_code == 400
        assert answer.json()["details"][0]["issue"] == "INVALID_PARAMETER_SYNTAX"
        assert server.violations() and capture.refunded == 0
        unknown = requests.post(url.replace(capture.id, "7RY0"), json={}, headers=bearer, timeout=5)
        assert unknown.status_code == 404
        # An empty body refunds what is left, as Payments v2 documents.
        whole = requests.post(url, json={}, headers=bearer, timeout=5)
        assert whole.status_code == 201 and whole.json()["status"] == "COMPLETED"
        assert capture.refunded == capture.amount == invoice.total
        assert server.response_problems == []
    finally:
        peer.stop()
