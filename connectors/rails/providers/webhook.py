"""Webhook: POST each invoice as JSON to a URL the customer's system serves.

The receiver authenticates the request by its signature and de-duplicates by
its ``Idempotency-Key`` (the invoice's key: the same on every redelivery):

* ``Railyard-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``.
  A receiver recomputes the HMAC over the raw body, compares in constant time and
  refuses timestamps older than a few minutes (:func:`verify` does all three).
* ``Idempotency-Key: <invoice.idempotency_key>``.

A credit note is sent the same way, as Railyard issued it: ``kind`` is
``credit_note``, its amounts are negative (the correction as the billing book
sees it), and ``credited_invoice`` names the invoice it credits (``id``,
``number``, ``idempotency_key``: the invoice of the same customer, period and
currency, as the receiver got it earlier).

Answers: 2xx delivered (a JSON body's ``id`` is kept as the ``receipt``
reference); 408, 425, 429 and 5xx, timeouts and refused connections are retried;
any other status is a permanent refusal, dead-lettered with the receiver's text.

Config (``RAILYARD_RAIL_WEBHOOK_*``): ``URL``, ``SECRET`` (or ``SECRET_FILE``),
``TIMEOUT`` (10 s).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import time
from typing import ClassVar
from urllib.parse import urlsplit

from connectors.rails.base import Delivery, PermanentRailError, TransientRailError
from connectors.rails.config import RailConfig
from connectors.rails.credit import credited_invoice, is_credit
from connectors.rails.registry import register
from streams.domain.errors import ConfigError
from streams.domain.invoice import Invoice
from streams.wire.invoices import invoice_to_json

SIGNATURE_HEADER = "Railyard-Signature"
TRANSIENT_STATUSES = frozenset((408, 425, 429))


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``Railyard-Signature`` header value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify(secret: str, body: bytes, header: str, now: float, tolerance: float = 300) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` and is at most ``tolerance`` s old."""
    parts = [p.split("=", 1) for p in header.split(",") if "=" in p]
    stamps = [v for k, v in parts if k.strip() == "t"]
    signatures = [v.strip() for k, v in parts if k.strip() == "v1"]
    if len(stamps) != 1 or not stamps[0].strip().isdigit() or not signatures:
        return False
    timestamp = int(stamps[0])
    if abs(now - timestamp) > tolerance:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return any(hmac.compare_digest(expected, s) for s in signatures)


def payload(invoice: Invoice) -> bytes:
    """The invoice as JSON (amounts as decimal strings, times as ISO 8601), keys sorted.

    The same invoice always gives the same bytes, so a receiver may also compare bodies.
    """
    doc = invoice_to_json(invoice)
    if is_credit(invoice):
        credited = credited_invoice(invoice)
        doc["credited_invoice"] = {
            "id": credited.id,
            "number": credited.number,
            "idempotency_key": credited.idempotency_key,
        }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


@register("webhook")
class WebhookRail:
    name: ClassVar[str] = "webhook"

    def __init__(self, config: RailConfig) -> None:
        self.url = urlsplit(config.require("url"))
        if self.url.scheme not in ("http", "https") or not self.url.hostname:
            raise ConfigError("rail webhook: RAILYARD_RAIL_WEBHOOK_URL must be an http(s) URL")
        self.secret = config.secret("secret")
        self.timeout = float(config.get("timeout", "10") or 10)
        self.clock = time.time

    @property
    def where(self) -> str:
        """The receiver as shown in messages: scheme, host and port, never credentials."""
        port = f":{self.url.port}" if self.url.port else ""
        return f"{self.url.scheme}://{self.url.hostname}{port}"

    def deliver(self, invoice: Invoice) -> Delivery:
        body = payload(invoice)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "railyard-webhook/1",
            "Idempotency-Key": invoice.idempotency_key,
            SIGNATURE_HEADER: sign(self.secret.get_secret_value(), body, int(self.clock())),
        }
        status, reason, answer, retry_after = self._post(body, headers)
        if 200 <= status < 300:
            refs = {"http_status": str(status)}
            receipt = _field(answer, "id")
            if receipt:
                refs["receipt"] = receipt
            return Delivery(self.name, invoice.id, refs, _field(answer, "status") or "received")
        text = (
            _field(answer, "message")
            or _field(answer, "error")
            or answer[:300].decode(errors="replace").strip()
        )
        message = f"webhook {self.where} answered {status} {reason}: {text}".rstrip(": ")
        if status in TRANSIENT_STATUSES or status >= 500:
            raise TransientRailError(message, code=f"http_{status}", retry_after=retry_after)
        raise PermanentRailError(message, code=f"http_{status}")

    def status(self, delivery: Delivery) -> str:
        return delivery.status

    def _post(self, body: bytes, headers: dict[str, str]) -> tuple[int, str, bytes, float | None]:
        cls = (
            http.client.HTTPSConnection
            if self.url.scheme == "https"
            else http.client.HTTPConnection
        )
        conn = cls(self.url.hostname or "", self.url.port, timeout=self.timeout)
        path = self.url.path or "/"
        if self.url.query:
            path += f"?{self.url.query}"
        try:
            conn.request("POST", path, body, headers)
            response = conn.getresponse()
            answer = response.read(65536)
            retry = response.getheader("Retry-After")
            return response.status, response.reason, answer, _seconds(retry)
        except (OSError, http.client.HTTPException) as exc:
            raise TransientRailError(
                f"webhook {self.where} unreachable: {type(exc).__name__}: {exc}", code="connection"
            ) from None
        finally:
            conn.close()


def _field(answer: bytes, name: str) -> str | None:
    try:
        value = json.loads(answer)
    except ValueError:
        return None
    if isinstance(value, dict) and isinstance(value.get(name), str | int):
        return str(value[name])
    return None


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None
