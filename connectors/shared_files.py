"""Third-party files Railyard reads but never copies into its repository, on any machine.

API specs for the rail stand-ins, the UBL schemas and EN 16931 rules for e-invoice
validation: each is asked for by its path under one shared folder (``rails``,
``einvoice``) and found, in this order:

1. ``$<SETTING>/<path>``, when that setting (``RAILYARD_RAIL_SPECS``,
   ``RAILYARD_EINVOICE``) names a folder;
2. ``shared/<folder>/<path>`` beside the repository (how our workplace and CI lay it out);
3. a copy in the user's cache (``$XDG_CACHE_HOME/railyard/<folder>``, else
   ``~/.cache/railyard/<folder>``), downloaded once from the file's official source
   at a pinned version and kept only if its SHA-256 matches.

When none works, :class:`SharedFileNotFound` says what was tried and how to fix it.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DOWNLOAD_TIMEOUT_S = 30.0


class SharedFileNotFound(FileNotFoundError):
    """No copy of a shared file could be found or fetched."""


@dataclass(frozen=True)
class Pinned:
    """Where a file is published, and the SHA-256 a download must have to be kept."""

    url: str
    sha256: str


@dataclass(frozen=True)
class SharedFolder:
    """One folder of shared files: its setting, its name beside the repository, its cache."""

    folder: str
    setting: str
    what: str = "file"
    """How messages name a file of this folder (``rail spec``, ``e-invoice file``)."""

    def cache_dir(self) -> Path:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return Path(base) / "railyard" / self.folder

    def beside(self, repo_root: Path = REPO_ROOT) -> Path:
        return repo_root.parent / "shared" / self.folder

    def file(self, name: str, pinned: Pinned | None, *, repo_root: Path = REPO_ROOT) -> Path:
        """The local path of ``name``; downloads ``pinned`` into the cache when needed."""
        tried: list[str] = []
        configured = os.environ.get(self.setting)
        folders = [Path(configured)] if configured else []
        folders.append(self.beside(repo_root))
        for folder in folders:
            if (folder / name).is_file():
                return folder / name
            tried.append(str(folder / name))
        cached = self.cache_dir() / name
        if cached.is_file():
            return cached
        if pinned is None:
            raise SharedFileNotFound(
                f"no pinned source for {self.what} {name!r}; tried {', '.join(tried)}. "
                f"Set {self.setting} to a folder holding it."
            )
        try:
            with urllib.request.urlopen(pinned.url, timeout=DOWNLOAD_TIMEOUT_S) as reply:  # noqa: S310
                body = reply.read()
        except OSError as exc:
            raise SharedFileNotFound(
                f"{self.what} {name} not found (tried {', '.join(tried)}) and the download from "
                f"{pinned.url} failed: {exc}. Set {self.setting} to a folder holding it."
            ) from exc
        digest = hashlib.sha256(body).hexdigest()
        if digest != pinned.sha256:
            raise SharedFileNotFound(
                f"{pinned.url} has SHA-256 {digest}, not the pinned {pinned.sha256}: not used"
            )
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(cached.suffix + ".part")
        partial.write_bytes(body)
        partial.replace(cached)  # a reader never sees half a file
        return cached
