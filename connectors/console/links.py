"""Signed, expiring tokens: customer portal links and operator sessions.

A token is ``<subject>.<expires unix seconds>.<hex HMAC-SHA256>``, the MAC over a
purpose, the subject and the expiry, so a portal link cannot be replayed as an operator
session (or the reverse), a customer key cannot be swapped, and an expired token is
refused by its own signed expiry. Pure: the clock is passed in.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum


class Purpose(StrEnum):
    PORTAL = "portal"
    OPERATOR = "operator"


@dataclass(frozen=True)
class Verified:
    subject: str
    expires: datetime


def _mac(secret: str, purpose: Purpose, subject: str, expires: int) -> str:
    message = f"{purpose}\n{subject}\n{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, purpose: Purpose, subject: str, now: datetime, valid: timedelta) -> str:
    """A token for ``subject`` valid until ``now + valid`` (to the second)."""
    if not secret:
        raise ValueError("no secret: set RAILYARD_CONSOLE_SECRET")
    if "." in subject or not subject:
        raise ValueError(f"cannot sign subject {subject!r}")
    expires = int((now + valid).timestamp())
    return f"{subject}.{expires}.{_mac(secret, purpose, subject, expires)}"


def verify(secret: str, purpose: Purpose, token: str, now: datetime) -> Verified | None:
    """The token's subject if its MAC holds and it has not expired at ``now``, else None."""
    if not secret:
        return None
    parts = token.split(".")
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    subject, expires_text, mac = parts
    expected = _mac(secret, purpose, subject, int(expires_text))
    if not hmac.compare_digest(mac, expected):
        return None
    expires = datetime.fromtimestamp(int(expires_text), UTC)
    return Verified(subject, expires) if now < expires else None
