"""The rails' signature checks, against signatures made from each rail's documentation."""

from __future__ import annotations

import json
from typing import Any

import pytest

from connectors.rails.config import RailConfig
from connectors.rails.notifications.verify import (
    Forged,
    Malformed,
    adyen_verifier,
    stripe_verifier,
    verifier,
)
from connectors.rails.sandbox.notify import adyen_signature, stripe_signature
from streams.domain.errors import ConfigError

HMAC_KEY = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
SECRET = "whsec_UnitTestEndpointSecret"


def item(psp: str, code: str = "AUTHORISATION", key: str = HMAC_KEY) -> dict[str, Any]:
    body: dict[str, Any] = {
        "eventCode": code,
        "success": "true",
        "pspReference": psp,
        "merchantAccountCode": "RailyardECOM",
        "merchantReference": "INV-1",
        "amount": {"value": 1250, "currency": "EUR"},
    }
    body["additionalData"] = {"hmacSignature": adyen_signature(body, key)}
    return body


def adyen_body(*items: dict[str, Any]) -> bytes:
    entries = [{"NotificationRequestItem": i} for i in items]
    return json.dumps({"live": "false", "notificationItems": entries}).encode()


def test_adyen_accepts_items_signed_with_its_key() -> None:
    verify = adyen_verifier(RailConfig("adyen", {"hmac_key": HMAC_KEY}))
    parsed = verify(adyen_body(item("P1"), item("P2", "REFUND")), {})
    assert [e["NotificationRequestItem"]["pspReference"] for e in parsed["notificationItems"]] == [
        "P1",
        "P2",
    ]


def test_adyen_refuses_a_changed_item_another_key_or_a_missing_signature() -> None:
    verify = adyen_verifier(RailConfig("adyen", {"hmac_key": HMAC_KEY}))
    changed = item("P1")
    changed["amount"]["value"] = 1
    other_key = item("P2", key="00" * 32)
    unsigned = {k: v for k, v in item("P3").items() if k != "additionalData"}
    for forged in (changed, other_key, unsigned):
        with pytest.raises(Forged) as caught:
            verify(adyen_body(item("P0"), forged), {})  # one bad item spoils the batch
        assert HMAC_KEY not in str(caught.value)
    with pytest.raises(Malformed):
        verify(b"not json", {})


def test_stripe_refuses_another_secret_a_stale_signature_and_none() -> None:
    verify = stripe_verifier(RailConfig("stripe", {"webhook_secret": SECRET}))
    body = json.dumps({"id": "evt_1", "type": "invoice.paid", "data": {"object": {}}}).encode()
    stale = stripe_signature(body, SECRET, 1_000_000_000)  # 2001: far outside 300 s
    other = stripe_signature(body, "whsec_SomeoneElse", 1_000_000_000)
    for header in (stale, other):
        with pytest.raises(Forged) as caught:
            verify(body, {"stripe-signature": header})
        assert SECRET not in str(caught.value)
    with pytest.raises(Forged):
        verify(body, {})


def test_only_the_rails_that_notify_have_a_verifier_and_each_needs_its_secret() -> None:
    with pytest.raises(ConfigError):
        verifier(RailConfig("netsuite", {}))
    with pytest.raises(ConfigError, match="RAILYARD_RAIL_ADYEN_HMAC_KEY"):
        verifier(RailConfig("adyen", {}))
    with pytest.raises(ConfigError, match="RAILYARD_RAIL_PAYPAL_WEBHOOK_ID"):
        verifier(
            RailConfig("paypal", {"base_url": "http://x", "client_id": "c", "client_secret": "s"})
        )
