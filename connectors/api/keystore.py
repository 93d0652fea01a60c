"""The API key file, ``<home>/api-keys.json``: state that outlives any topic's retention.

Written whole to a temporary file and renamed, so a reader never sees half a file;
``railyard api`` re-reads it when its modification time changes, so a key made or
revoked takes effect without a restart.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from connectors.api.keys import ApiKey
from streams.settings import Settings


def key_file(settings: Settings) -> Path:
    return settings.home / "api-keys.json"


def load(path: Path) -> list[ApiKey]:
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    return [ApiKey.from_json(k) for k in document.get("keys", [])]


def save(path: Path, keys: list[ApiKey]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"keys": [k.to_json() for k in keys]}, indent=2) + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


class KeyFile:
    """The keys in force, re-read when the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: int | None = None
        self._keys: list[ApiKey] = []

    def keys(self) -> list[ApiKey]:
        try:
            stamp = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            stamp = None
        if stamp != self._stamp or stamp is None:
            self._keys = load(self.path) if stamp is not None else []
            self._stamp = stamp
        return self._keys
