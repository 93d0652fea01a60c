"""API keys: made once, shown once, stored only as a SHA-256 digest.

A key is ``ryk_`` + 32 random bytes (base64url): with 256 bits of entropy a plain
SHA-256 is as strong as a slow password hash, and lets a request be checked in one
lookup. The key file keeps name, digest, allowed sources and dates, never the key.
Pure except for :func:`new_key`'s randomness; the clock reading is passed in.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

PREFIX = "ryk_"


def new_key() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored key: ``sources`` empty means it may send any event source."""

    id: str
    name: str
    digest: str
    created_at: datetime
    sources: tuple[str, ...] = ()
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @property
    def allowed_sources(self) -> frozenset[str] | None:
        return frozenset(self.sources) if self.sources else None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "digest": self.digest,
            "sources": list(self.sources),
            "created_at": self.created_at.isoformat(),
            "revoked_at": None if self.revoked_at is None else self.revoked_at.isoformat(),
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> ApiKey:
        revoked = obj.get("revoked_at")
        return cls(
            id=str(obj["id"]),
            name=str(obj["name"]),
            digest=str(obj["digest"]),
            created_at=datetime.fromisoformat(obj["created_at"]),
            sources=tuple(str(s) for s in obj.get("sources", ())),
            revoked_at=None if revoked is None else datetime.fromisoformat(revoked),
        )


def create(name: str, sources: Iterable[str], key: str, now: datetime) -> ApiKey:
    """The record of ``key``; its id is the digest's first 12 hex digits, enough to name
    it in ``list``/``revoke`` and useless for guessing it."""
    d = digest(key)
    return ApiKey(d[:12], name, d, now, tuple(sorted(set(sources))))


def revoke(keys: list[ApiKey], id_or_name: str, now: datetime) -> tuple[list[ApiKey], int]:
    """Revoke the active keys with this id or name; returns the keys and how many."""
    out, count = [], 0
    for k in keys:
        if k.active and id_or_name in (k.id, k.name):
            out.append(replace(k, revoked_at=now))
            count += 1
        else:
            out.append(k)
    return out, count


def bearer(header: str | None) -> str | None:
    """The key of ``Authorization: Bearer <key>``, None when there is none."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    return value if scheme.lower() == "bearer" and value else None


def find(keys: Iterable[ApiKey], presented: str) -> ApiKey | None:
    """The active key ``presented`` is, compared digest to digest in constant time."""
    d = digest(presented)
    found = None
    for k in keys:
        if hmac.compare_digest(k.digest, d) and k.active:
            found = k
    return found


LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def anonymous_allowed(keys: Iterable[ApiKey], client_host: str | None, setting: bool) -> bool:
    """Keys are required, except on loopback with the setting on and no active key made:
    the demo's convenience, never a deployment's (a key, once made, closes it)."""
    return setting and client_host in LOOPBACK and not any(k.active for k in keys)
