"""Who may see which page: operators by API key or session cookie, customers by link.

Operators present ``Authorization: Bearer <api key>``, checked by the key verifier the
console is given (the API's hashed key store, in the API process), or the session cookie
the login form sets after the same check: HttpOnly, SameSite=Strict, signed, 12 hours.
The session key is ``RAILYARD_CONSOLE_SECRET`` or, without one, a random key per process
(sessions then end with the process). Portal links need the setting: they are signed by
``railyard console link`` in another process.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from connectors.api.keys import bearer
from connectors.console.links import Purpose, sign, verify

KeyVerifier = Callable[[str], bool]
"""True when the presented API key is a valid operator key."""

COOKIE = "railyard_console"
SESSION = timedelta(hours=12)


@dataclass(frozen=True)
class Keys:
    portal: str
    """Signs and checks portal links; empty: no portal."""
    session: str

    @classmethod
    def of(cls, console_secret: str) -> Keys:
        return cls(console_secret, console_secret or secrets.token_hex(32))


def operator(
    keys: Keys, verify_key: KeyVerifier, header: str | None, cookie: str | None, now: datetime
) -> bool:
    key = bearer(header)
    if key is not None:
        return verify_key(key)
    return cookie is not None and verify(keys.session, Purpose.OPERATOR, cookie, now) is not None


def session_cookie(keys: Keys, now: datetime) -> str:
    return sign(keys.session, Purpose.OPERATOR, "operator", now, SESSION)


def portal_customer(keys: Keys, token: str, now: datetime) -> str | None:
    found = verify(keys.portal, Purpose.PORTAL, token, now)
    return None if found is None else found.subject
