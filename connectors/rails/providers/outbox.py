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

A missing directory (an unmounted share) or a failing write is transient: the
directory is never created here, so nothing is written under a missing mount point.

Config (``RAILYARD_RAIL_OUTBOX_*``): ``DIRECTORY``, ``SUPPLIER_NAME`` (Railyard),
``SUPPLIER_ID``, ``CUSTOMIZATION_ID`` (see :data:`~connectors.rails.ubl.RAILYARD_CUSTOMIZATION`).
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import ClassVar

from connectors.rails.base import Delivery, PermanentRailError, TransientRailError
from connectors.rails.config import RailConfig
from connectors.rails.registry import register
from connectors.rails.ubl import RAILYARD_CUSTOMIZATION, Supplier, problems, to_ubl
from streams.domain.invoice import Invoice

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def file_name(number: str) -> str:
    """``<number>.xml``, with anything but letters, digits, ``.``, ``_`` and ``-`` replaced."""
    safe = _UNSAFE.sub("_", number).lstrip(".")
    if not safe:
        raise PermanentRailError(f"invoice number {number!r} gives no file name", code="bad_number")
    return f"{safe}.xml"


@register("outbox")
class OutboxRail:
    name: ClassVar[str] = "outbox"

    def __init__(self, config: RailConfig) -> None:
        self.directory = Path(config.require("directory"))
        self.supplier = Supplier(
            config.get("supplier_name") or "Railyard", config.get("supplier_id")
        )
        self.customization_id = config.get("customization_id") or RAILYARD_CUSTOMIZATION

    def deliver(self, invoice: Invoice) -> Delivery:
        document = to_ubl(invoice, self.supplier, self.customization_id)
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
