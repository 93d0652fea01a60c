"""Each rail's signature scheme, checked through the rail's own SDK or API.

* Stripe: ``Stripe-Signature`` (``t=<unix time>,v1=<HMAC-SHA256 of "t.body">``)
  with the endpoint's signing secret (``RAILYARD_RAIL_STRIPE_WEBHOOK_SECRET``), by
  ``stripe.Webhook.construct_event``; a signature older than the tolerance
  (``webhook_tolerance`` seconds, 300 by default as in Stripe's libraries) is a replay.
* Adyen: the ``hmacSignature`` in each ``NotificationRequestItem``'s
  ``additionalData``, an HMAC-SHA256 of the item's fields with the hex HMAC key
  (``RAILYARD_RAIL_ADYEN_HMAC_KEY``), by ``Adyen.util.is_valid_hmac_notification``.
  Every item must carry a valid one.
* PayPal: PayPal checks its own signature: the ``PAYPAL-*`` transmission headers,
  the webhook id (``RAILYARD_RAIL_PAYPAL_WEBHOOK_ID``) and the event go to
  ``POST /v1/notifications/verify-webhook-signature``, which must answer
  ``verification_status: SUCCESS``.

A verifier raises :class:`Forged` with a reason that never contains a secret, and
returns the parsed body otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import requests
import stripe
from Adyen.util import is_valid_hmac_notification

from connectors.rails.config import RailConfig
from connectors.rails.notifications.mapping import adyen_items
from streams.domain.errors import ConfigError, RailyardError


class Forged(RailyardError):
    """The notification's signature does not verify (HTTP 401)."""


class Malformed(RailyardError):
    """The body is not JSON or not what the rail sends (HTTP 400)."""


class Verifier(Protocol):
    def __call__(self, body: bytes, headers: Mapping[str, str]) -> dict[str, Any]: ...


def _json(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body)
    except ValueError:
        raise Malformed("the body is not JSON") from None
    if not isinstance(parsed, dict):
        raise Malformed("the body is not a JSON object")
    return parsed


def stripe_verifier(config: RailConfig) -> Verifier:
    secret = config.secret("webhook_secret")
    tolerance = int(config.get("webhook_tolerance") or 300)

    def verify(body: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
        header = headers.get("stripe-signature")
        if not header:
            raise Forged("no Stripe-Signature header")
        try:
            stripe.Webhook.construct_event(body, header, secret.get_secret_value(), tolerance)
        except stripe.SignatureVerificationError as exc:
            # Stripe's messages name the header and the timestamp, never the secret.
            raise Forged(f"Stripe-Signature: {exc.user_message or 'does not verify'}") from None
        except ValueError:
            raise Malformed("the body is not JSON") from None
        return _json(body)

    return verify


def adyen_verifier(config: RailConfig) -> Verifier:
    key = config.secret("hmac_key")

    def verify(body: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
        parsed = _json(body)
        try:
            items = list(adyen_items(parsed))
        except ValueError as exc:
            raise Malformed(str(exc)) from None
        for item in items:
            if not isinstance(item.get("additionalData"), Mapping):
                raise Forged("an Adyen item has no additionalData.hmacSignature")
            try:
                valid = is_valid_hmac_notification(dict(item), key.get_secret_value())
            except (ValueError, KeyError, TypeError):  # an empty or absent signature
                valid = False
            if not valid:
                reference = item.get("pspReference", "?")
                raise Forged(f"Adyen item {reference}: hmacSignature does not verify")
        return parsed

    return verify


PAYPAL_HEADERS = {
    "auth_algo": "paypal-auth-algo",
    "cert_url": "paypal-cert-url",
    "transmission_id": "paypal-transmission-id",
    "transmission_sig": "paypal-transmission-sig",
    "transmission_time": "paypal-transmission-time",
}


def paypal_verifier(config: RailConfig) -> Verifier:
    base = config.require("base_url").rstrip("/")
    client_id, client_secret = config.require("client_id"), config.secret("client_secret")
    webhook_id = config.require("webhook_id")
    timeout = float(config.get("timeout") or 10)

    def token() -> str:
        answer = requests.post(
            f"{base}/v1/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=(client_id, client_secret.get_secret_value()),
            timeout=timeout,
        )
        if answer.status_code != 200:
            raise RailyardError(f"PayPal token: HTTP {answer.status_code}")
        return str(answer.json()["access_token"])

    def verify(body: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
        event = _json(body)
        missing = [h for h in PAYPAL_HEADERS.values() if not headers.get(h)]
        if missing:
            raise Forged(f"missing {', '.join(h.upper() for h in missing)}")
        request = {k: headers[h] for k, h in PAYPAL_HEADERS.items()}
        answer = requests.post(
            f"{base}/v1/notifications/verify-webhook-signature",
            json={**request, "webhook_id": webhook_id, "webhook_event": event},
            headers={"Authorization": f"Bearer {token()}"},
            timeout=timeout,
        )
        if answer.status_code != 200:
            raise RailyardError(f"PayPal verify-webhook-signature: HTTP {answer.status_code}")
        if answer.json().get("verification_status") != "SUCCESS":
            raise Forged(f"PayPal transmission {request['transmission_id']}: not verified")
        return event

    return verify


VERIFIERS: Mapping[str, Callable[[RailConfig], Verifier]] = {
    "stripe": stripe_verifier,
    "adyen": adyen_verifier,
    "paypal": paypal_verifier,
}


def verifier(config: RailConfig) -> Verifier:
    factory = VERIFIERS.get(config.rail)
    if factory is None:
        raise ConfigError(
            f"rail {config.rail} sends no notifications Railyard verifies "
            f"(known: {', '.join(sorted(VERIFIERS))})"
        )
    return factory(config)
