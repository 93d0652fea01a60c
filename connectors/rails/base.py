"""The one interface every rail implements, and the two ways a delivery can fail.

A rail turns an :class:`~streams.domain.invoice.Invoice` into the rail's own
documents (a Stripe invoice, an Adyen payment, a NetSuite invoice record, ...)
and returns the rail's references. It must pass ``invoice.idempotency_key``
through the rail's own idempotency mechanism, so delivering the same invoice
twice (after a crash, a timeout, a redelivery) creates it once.

Every failure is one of two kinds, decided by the rail module that understands
the rail's answers:

* :class:`TransientRailError`: timeouts, connection resets, 429, 5xx. The runner
  retries with exponential backoff and jitter, honouring ``retry_after``.
* :class:`PermanentRailError`: the rail refused the request (validation, unknown
  customer, ...). The runner sends the invoice to ``invoices.dlq`` with the rail's
  message; retrying would only fail again.

Messages must never contain credentials: rails build them from the rail's error
code and text, not from request headers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from streams.domain.errors import RailyardError
from streams.domain.invoice import Invoice


@dataclass(frozen=True)
class Delivery:
    """What the rail holds for an invoice after delivery."""

    rail: str
    invoice_id: str
    references: Mapping[str, str] = field(default_factory=dict)
    """The rail's ids, e.g. ``{"customer": "cus_…", "invoice": "in_…"}``."""
    status: str = "delivered"
    """The rail's own status word (``open``, ``paid``, ``SENT``, ``Authorised``, ...)."""


class RailError(RailyardError):
    """A rail did not take the invoice."""

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        """The rail's HTTP status, when it answered one: the runner's retry policy
        (:mod:`connectors.rails.policy`) decides on it, whatever the subclass says."""


class TransientRailError(RailError):
    """Worth retrying: the rail (or the way to it) is busy or down."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, code=code, status=status)
        self.retry_after = retry_after


class PermanentRailError(RailError):
    """The rail refused the invoice; retrying would fail the same way."""


class Rail(Protocol):
    """A billing rail: deliver an invoice, optionally look up what became of it."""

    name: ClassVar[str]

    def deliver(self, invoice: Invoice) -> Delivery:
        """Create the invoice (or charge) at the rail, once per ``idempotency_key``.

        Raises :class:`TransientRailError` or :class:`PermanentRailError`.
        """
        ...

    def status(self, delivery: Delivery) -> str:
        """The rail's current status of an earlier delivery."""
        ...
