"""Who is asking, by ClickHouse's rules (``authenticateUserByHTTP.cpp``): pure, no I/O.

Analysts are configured as ``name:sha256hex`` pairs (``RAILYARD_ANALYST_USERS``), so the
store never holds a password; a request names its user in one of ClickHouse's three ways,
and a wrong password or unknown user gets ClickHouse's AUTHENTICATION_FAILED.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping

from connectors.clickhouse.http_protocol import AUTHENTICATION_FAILED, ClickHouseError, header

DEFAULT_USER = "default"


def password_hash(password: str) -> str:
    """How a password is stored: its SHA-256, hex (the ``RAILYARD_ANALYST_USERS`` form)."""
    return hashlib.sha256(password.encode()).hexdigest()


def parse_users(text: str) -> dict[str, str]:
    """``name:sha256hex,...`` as {name: hash}; empty means ClickHouse's ``default`` user
    with an empty password, which is what clients assume when given none."""
    users: dict[str, str] = {}
    for entry in text.split(","):
        name, sep, digest = entry.strip().partition(":")
        if not name:
            continue
        if not sep or not re.fullmatch(r"[0-9a-fA-F]{64}", digest):
            raise ValueError(f"analyst user {name!r}: expected name:sha256hex")
        users[name] = digest.lower()
    return users or {DEFAULT_USER: password_hash("")}


def _multiple(first: str, second: str) -> ClickHouseError:
    return ClickHouseError(
        AUTHENTICATION_FAILED,
        f"Invalid authentication: it is not allowed to use {first} and {second} simultaneously",
    )


def credentials(headers: Mapping[str, str], protocol: Mapping[str, str]) -> tuple[str, str]:
    """(user, password) from the request, by ClickHouse's rules: ``X-ClickHouse-User`` /
    ``X-ClickHouse-Key``, else HTTP basic auth, else the ``user``/``password`` parameters,
    else ``default``; mixing two of them is refused."""
    user = header(headers, "X-ClickHouse-User")
    key = header(headers, "X-ClickHouse-Key")
    authorization = header(headers, "Authorization")
    in_params = "user" in protocol or "password" in protocol
    if user or key:
        if not user:
            raise ClickHouseError(
                AUTHENTICATION_FAILED, "Got an empty user name from X-ClickHouse HTTP headers"
            )
        if authorization:
            raise _multiple("X-ClickHouse HTTP headers", "Authorization HTTP header")
        if in_params:
            raise _multiple("X-ClickHouse HTTP headers", "authentication via parameters")
        return user, key
    if authorization:
        if in_params:
            raise _multiple("Authorization HTTP header", "authentication via parameters")
        scheme, _, info = authorization.strip().partition(" ")
        if scheme.lower() != "basic":
            raise ClickHouseError(
                AUTHENTICATION_FAILED,
                f"Invalid authentication: '{scheme}' HTTP Authorization scheme is not supported",
            )
        try:
            decoded = base64.b64decode(info.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise ClickHouseError(
                AUTHENTICATION_FAILED, "Invalid authentication: malformed Basic credentials"
            ) from exc
        name, _, password = decoded.partition(":")
        if not name:
            raise ClickHouseError(
                AUTHENTICATION_FAILED, "Got an empty user name from Authorization HTTP header"
            )
        return name, password
    name = protocol.get("user", DEFAULT_USER)
    if not name:
        raise ClickHouseError(
            AUTHENTICATION_FAILED, "Got an empty user name from authentication via parameters"
        )
    return name, protocol.get("password", "")


def authenticate(users: Mapping[str, str], user: str, password: str) -> None:
    """Raise ClickHouse's AUTHENTICATION_FAILED unless ``password`` is ``user``'s; an unknown
    user gets the same answer, so the reply never tells which names exist."""
    stored = users.get(user, "")
    offered = password_hash(password)
    if not (hmac.compare_digest(stored, offered) and user in users):
        raise ClickHouseError(
            AUTHENTICATION_FAILED,
            f"{user}: Authentication failed: password is incorrect, or there is no user"
            " with such name.",
        )
