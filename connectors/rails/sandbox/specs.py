"""Where the stand-ins find the rails' published API specs, on any machine.

The specs are third-party files: never copied into this repository. A stand-in asks
for one by its path under ``shared/rails`` and gets, in this order:

1. ``$RAILYARD_RAIL_SPECS/<path>``, when that setting names a folder;
2. ``shared/rails/<path>`` beside the repository (how our workplace and CI lay it out);
3. a copy in the user's cache (``$XDG_CACHE_HOME/railyard/rails``, else
   ``~/.cache/railyard/rails``), downloaded once from the file's official repository at
   the pinned commit and kept only if its SHA-256 matches.

When none works, :class:`SpecNotFound` says what was tried and how to fix it. The
lookup itself is :mod:`connectors.shared_files`, shared with the e-invoice material.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from connectors.shared_files import Pinned, SharedFileNotFound, SharedFolder

REPO_ROOT = Path(__file__).resolve().parents[3]
OFFICIAL_BASE = "https://raw.githubusercontent.com"


@dataclass(frozen=True)
class PublishedSpec:
    """One spec file, pinned: its repository, path and commit, and its SHA-256."""

    repo: str
    path: str
    commit: str
    sha256: str

    def url(self, base: str = OFFICIAL_BASE) -> str:
        return f"{base}/{self.repo}/{self.commit}/{self.path}"


ADYEN_OPENAPI = "Adyen/adyen-openapi", "aa014f0cbdb58ff5c44a2ff9d5fe734642210aff"
PAYPAL_OPENAPI = "paypal/paypal-rest-api-specifications", "ec4d8f36a6ab0abcc3865e1072aaddc85ea14d5c"
PUBLISHED: dict[str, PublishedSpec] = {
    "adyen/CheckoutService-v72.json": PublishedSpec(
        ADYEN_OPENAPI[0],
        "json/CheckoutService-v72.json",
        ADYEN_OPENAPI[1],
        "f64ab36dbfa9eb6dea681872f2318b6dd264d6d4f8b6954551d8f6c41ce5ebd7",
    ),
    "adyen/CheckoutService-v71.json": PublishedSpec(
        ADYEN_OPENAPI[0],
        "json/CheckoutService-v71.json",
        ADYEN_OPENAPI[1],
        "9e426ae2bf007b148c393c5f163bbb0abe54959172b4d85676aedbd178b2b0b0",
    ),
    "paypal/invoicing_v2.json": PublishedSpec(
        PAYPAL_OPENAPI[0],
        "openapi/invoicing_v2.json",
        PAYPAL_OPENAPI[1],
        "0ce17c89b5a547152553e69567530f4001d6d6529abd11cf44a1fc6292af72b1",
    ),
    "paypal/payments_payment_v2.json": PublishedSpec(
        PAYPAL_OPENAPI[0],
        "openapi/payments_payment_v2.json",
        PAYPAL_OPENAPI[1],
        "73985bd25819a9d42c0990de111caebf7bea8f0ea1f2647dbe30bd62daddae6c",
    ),
}
"""The specs the stand-ins validate against (``shared/rails/SOURCES.md`` lists them)."""


SpecNotFound = SharedFileNotFound
"""No copy of a spec could be found or fetched."""
FOLDER = SharedFolder("rails", "RAILYARD_RAIL_SPECS", "rail spec")


def cache_dir() -> Path:
    return FOLDER.cache_dir()


def spec_file(name: str, *, base_url: str = OFFICIAL_BASE) -> Path:
    """The local path of spec ``name`` (e.g. ``paypal/invoicing_v2.json``)."""
    published = PUBLISHED.get(name)
    pinned = published and Pinned(published.url(base_url), published.sha256)
    return FOLDER.file(name, pinned or None, repo_root=REPO_ROOT)
