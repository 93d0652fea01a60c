"""Webhook rail: the signature receivers verify, the payload, and how answers are classified."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from connectors.rails.base import PermanentRailError, TransientRailError
from connectors.rails.config import RailConfig
from connectors.rails.providers.webhook import WebhookRail, payload, sign, verify
from streams.domain.errors import ConfigError
from streams.domain.invoice import DocumentKind
from tests.fixtures.kafka import free_ports
from tests.fixtures.rails.invoices import sample_invoice

SECRET = "whsec_unit_test_secret"
BODY = b'{"id":"inv_1"}'


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, BODY, 1700000000) == f"t=1700000000,v1={expected}"


def test_verify_accepts_a_fresh_signature() -> None:
    assert verify(SECRET, BODY, sign(SECRET, BODY, 1700000000), now=1700000100)


@pytest.mark.parametrize(
    ("secret", "body", "now"),
    [
        ("another secret", BODY, 1700000000),
        (SECRET, BODY + b" ", 1700000000),
        (SECRET, BODY, 1700000000 + 301),
        (SECRET, BODY, 1700000000 - 301),
    ],
    ids=["wrong secret", "tampered body", "too old", "from the future"],
)
def test_verify_refuses(secret: str, body: bytes, now: int) -> None:
    assert not verify(secret, body, sign(SECRET, BODY, 1700000000), now=now)


def test_verify_accepts_any_of_several_signatures_during_secret_rotation() -> None:
    old = sign("old secret", BODY, 1700000000).split(",")[1]
    header = f"{sign(SECRET, BODY, 1700000000)},{old}"
    assert verify("old secret", BODY, header, now=1700000000)
    assert verify(SECRET, BODY, header, now=1700000000)


@pytest.mark.parametrize("header", ["", "v1=abc", "t=x,v1=abc", "t=1,t=2,v1=abc", "garbage"])
def test_verify_refuses_malformed_headers(header: str) -> None:
    assert not verify(SECRET, BODY, header, now=1)


def test_payload_is_the_same_bytes_for_the_same_invoice() -> None:
    invoice = sample_invoice(1, "webhook")
    assert payload(invoice) == payload(sample_invoice(1, "webhook"))
    doc = json.loads(payload(invoice))
    assert doc["id"] == invoice.id and doc["total"] == str(invoice.total)
    assert doc["idempotency_key"] == invoice.idempotency_key
    assert doc["kind"] == "invoice" and "credited_invoice" not in doc


def test_a_credit_note_says_so_and_names_the_invoice_it_credits() -> None:
    invoice = sample_invoice(4, "webhook")
    note = sample_invoice(4, "webhook", kind=DocumentKind.CREDIT_NOTE)
    doc = json.loads(payload(note))
    assert doc["kind"] == "credit_note"
    assert doc["total"] == str(note.total) == str(-invoice.total)  # as Railyard issued it
    assert doc["credited_invoice"] == {
        "id": invoice.id,
        "number": invoice.number,
        "idempotency_key": invoice.idempotency_key,
    }
    assert doc["idempotency_key"] == note.idempotency_key != invoice.idempotency_key


class Receiver:
    """A local receiver answering whatever the test sets."""

    def __init__(self) -> None:
        self.status, self.answer = 200, b'{"id":"rcpt_1"}'
        self.headers: dict[str, str] = {}
        self.seen: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.seen.append({"headers": dict(self.headers), "body": body})
                self.send_response(receiver.status)
                for k, v in receiver.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(receiver.answer)))
                self.end_headers()
                self.wfile.write(receiver.answer)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def url(self, userinfo: str = "") -> str:
        return f"http://{userinfo}127.0.0.1:{self.httpd.server_port}/hook?x=1"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.httpd.shutdown()
    r.httpd.server_close()


def rail(url: str) -> WebhookRail:
    return WebhookRail(RailConfig("webhook", {"url": url, "secret": SECRET, "timeout": "5"}))


def test_delivery_is_signed_and_keyed(receiver: Receiver) -> None:
    invoice = sample_invoice(2, "webhook")
    sender = rail(receiver.url())
    sender.clock = lambda: 1_738_400_000.0  # a fixed instant, not the wall clock
    delivery = sender.deliver(invoice)
    assert delivery.references == {"http_status": "200", "receipt": "rcpt_1"}
    (seen,) = receiver.seen
    assert seen["headers"]["Idempotency-Key"] == invoice.idempotency_key
    signature = seen["headers"]["Railyard-Signature"]
    assert signature.startswith("t=1738400000,")
    assert verify(SECRET, seen["body"], signature, now=1_738_400_060)


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503])
def test_busy_or_broken_receivers_are_transient(receiver: Receiver, status: int) -> None:
    receiver.status, receiver.answer, receiver.headers = status, b"busy", {"Retry-After": "7"}
    with pytest.raises(TransientRailError) as err:
        rail(receiver.url()).deliver(sample_invoice(1, "webhook"))
    assert err.value.code == f"http_{status}" and err.value.retry_after == 7.0


@pytest.mark.parametrize("status", [400, 401, 404, 409, 422])
def test_other_refusals_are_permanent_with_the_receivers_message(
    receiver: Receiver, status: int
) -> None:
    receiver.status, receiver.answer = status, b'{"message": "unknown customer acme"}'
    with pytest.raises(PermanentRailError) as err:
        rail(receiver.url()).deliver(sample_invoice(1, "webhook"))
    assert "unknown customer acme" in str(err.value) and err.value.code == f"http_{status}"


def test_unreachable_receiver_is_transient_and_messages_hold_no_credentials() -> None:
    (port,) = free_ports(1)
    hook = rail(f"http://user:hunter2-password@127.0.0.1:{port}/hook")
    with pytest.raises(TransientRailError) as err:
        hook.deliver(sample_invoice(1, "webhook"))
    assert "hunter2" not in str(err.value) and SECRET not in str(err.value)
    assert f"127.0.0.1:{port}" in str(err.value)


def test_config_needs_an_http_url_and_a_secret() -> None:
    with pytest.raises(ConfigError):
        WebhookRail(RailConfig("webhook", {"url": "ftp://example.org/x", "secret": SECRET}))
    with pytest.raises(ConfigError) as err:
        WebhookRail(RailConfig("webhook", {"url": "http://127.0.0.1:1/x"}))
    assert "RAILYARD_RAIL_WEBHOOK_SECRET" in str(err.value)
