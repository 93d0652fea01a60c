"""Outbox: one UBL 2.1 XML file per invoice in a directory another system picks up.

For e-invoicing access points, SFTP drops and ERPs that import files. Delivery is
atomic and idempotent:

* The document is written to a temporary file in the same directory, flushed and
  fsynced, then renamed over ``<number>.xml`` with :func:`os.replace`, and the
  directory is fsynced: a reader sees the whole file or none, even after a crash.
* The file name comes from the invoice number and the bytes depend only on the
  invoice, so a redelivery finds an identical file and is simply delivered. A
  *different* document under the same number is refused (dead-lettered): an
  issued invoice is never overwritten.
* Every document is checked for the UBL 2.1 mandatory elements before it is written.

E-invoices: the document is EN 16931 / Peppol BIS Billing 3.0 when the catalog the
invoice was rated with (``invoice.catalog_version``) gives a seller and the buyer's
billing profile (:class:`~connectors.rails.ubl.Parties`). That catalog is read from
the ``catalog`` topic, which keeps every applied version
(:class:`~connectors.kafka.catalog_versions.CatalogVersions`): the parties are those
in force when the invoice was rated, so a redelivery writes the same bytes even
after the catalog changed, and no invoice record had to grow a new schema. A
version not yet on the topic is transient; an invoice naming no published version
(a test's), or a document that cannot conform (see
:func:`~connectors.rails.ubl.why_not_compliant`), is written as plain UBL, labelled
:data:`~connectors.rails.ubl.RAILYARD_CUSTOMIZATION`, never as Peppol.

A missing directory (an unmounted share) or a failing write is transient: the
directory is never created here, so nothing is written under a missing mount point.

Config (``RAILYARD_RAIL_OUTBOX_*``): ``DIRECTORY``, ``SUPPLIER_NAME`` (Railyard),
``SUPPLIER_ID``, ``CUSTOMIZATION_ID`` of documents that are not e-invoices (see
:data:`~connectors.rails.ubl.RAILYARD_CUSTOMIZATION`; one claiming EN 16931 or Peppol is
refused: only a complete document is labelled so, and then always).
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from connectors.rails.base import Delivery, PermanentRailError, TransientRailError
from connectors.rails.config import RailConfig
from connectors.rails.registry import register
from connectors.rails.ubl import (
    RAILYARD_CUSTOMIZATION,
    Parties,
    Supplier,
    claims_conformance,
    problems,
    to_ubl,
    why_not_compliant,
)
from streams.domain.catalog import Catalog
from streams.domain.errors import ConfigError
from streams.domain.invoice import Invoice

log = logging.getLogger("railyard.rails.outbox")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_VERSION = re.compile(r"[0-9a-f]{16}\Z")
"""A catalog version (:attr:`Catalog.version`): 16 hex digits."""
CatalogLookup = Callable[[str], Catalog | None]
"""The catalog applied under a version, None when there is none."""


def topic_catalogs() -> CatalogLookup:
    """Catalog versions from the ``catalog`` topic of this process's settings."""
    from connectors.kafka.catalog_versions import CatalogVersions
    from streams.settings import Settings

    return CatalogVersions(Settings()).get


def file_name(number: str) -> str:
    """``<number>.xml``, with anything but letters, digits, ``.``, ``_`` and ``-`` replaced."""
    safe = _UNSAFE.sub("_", number).lstrip(".")
    if not safe:
        raise PermanentRailError(f"invoice number {number!r} gives no file name", code="bad_number")
    return f"{safe}.xml"


@register("outbox")
class OutboxRail:
    name: ClassVar[str] = "outbox"

    def __init__(self, config: RailConfig, catalogs: CatalogLookup | None = None) -> None:
        self.directory = Path(config.require("directory"))
        self.supplier = Supplier(
            config.get("supplier_name") or "Railyard", config.get("supplier_id")
        )
        self.customization_id = config.get("customization_id") or RAILYARD_CUSTOMIZATION
        if claims_conformance(self.customization_id):
            raise ConfigError(
                f"rail outbox: CUSTOMIZATION_ID {self.customization_id} claims EN 16931 or "
                "Peppol conformance; the outbox writes that label itself, on complete documents"
            )
        self._catalogs = catalogs

    def parties(self, invoice: Invoice) -> Parties | None:
        """The seller and buyer of ``invoice``, from the catalog version it was rated with."""
        if not _VERSION.match(invoice.catalog_version):
            return None
        if self._catalogs is None:
            self._catalogs = topic_catalogs()
        try:
            catalog = self._catalogs(invoice.catalog_version)
        except Exception as exc:  # the catalog topic unreachable: try again later
            raise TransientRailError(
                f"catalog {invoice.catalog_version}: cannot be read: {exc}", code="catalog"
            ) from None
        if catalog is None:
            raise TransientRailError(
                f"catalog {invoice.catalog_version} is not on the catalog topic (yet)",
                code="catalog_version",
            )
        return Parties.of(catalog, invoice.customer)

    def deliver(self, invoice: Invoice) -> Delivery:
        parties = self.parties(invoice)
        missing = why_not_compliant(invoice, parties)
        if missing and parties is not None:
            log.warning(
                "%s written as plain UBL, not an EN 16931 e-invoice: %s",
                invoice.number,
                "; ".join(missing),
            )
        document = to_ubl(invoice, self.supplier, self.customization_id, parties)
        wrong = problems(document)
        if wrong:
            raise PermanentRailError(
                f"{invoice.number} is not a valid UBL 2.1 document: {'; '.join(wrong)}",
                code="invalid_ubl",
            )
        path = self.directory / file_name(invoice.number)
        try:
            status = self._write(path, document)
        except OSError as exc:
            code = errno.errorcode.get(exc.errno or 0, "os_error")
            raise TransientRailError(
                f"outbox {self.directory}: cannot write {path.name}: {exc.strerror or exc}",
                code=code,
            ) from None
        refs = {"path": str(path), "sha256": hashlib.sha256(document).hexdigest()}
        return Delivery(self.name, invoice.id, refs, status)

    def status(self, delivery: Delivery) -> str:
        path = Path(delivery.references["path"])
        return "written" if path.is_file() else "picked_up"

    def _write(self, path: Path, document: bytes) -> str:
        if not self.directory.is_dir():
            raise OSError(errno.ENOENT, "the outbox directory is not available")
        try:
            with open(path, "rb") as existing:
                held = existing.read()
        except FileNotFoundError:
            held = None
        if held is not None:
            if held == document:
                return "exists"
            raise PermanentRailError(
                f"outbox already holds a different document named {path.name}; "
                "an issued invoice is never overwritten",
                code="conflict",
            )
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(document)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return "written"
