"""Which Railyard invoice a notification names, and whether it was already recorded (pure).

The ledger is rebuilt from ``invoices.status``, the topic the receiver publishes to,
so idempotence needs no second store: every status step a notification produced
carries the rail's event id in ``references["event_id"]``, and an event id already
on the topic is answered 2xx and published again never, across restarts too. The
``delivered`` steps of the rail give the index from the rail's ids (Stripe's invoice
id, Adyen's pspReference, PayPal's invoice id) and from the invoice number to the
invoice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectors.rails.notifications.mapping import InvoiceRef, Notification, RefKind

EVENT_ID = "event_id"
"""The ``references`` key of a notification's status step that holds the rail's event id."""


NOT_INVOICE_REFERENCES = frozenset({"customer", EVENT_ID})
"""``references`` keys naming something other than the document (a customer holds many)."""


@dataclass(frozen=True)
class Known:
    """An invoice the rail holds, as its ``delivered`` step said."""

    invoice_id: str
    number: str
    customer: str


@dataclass
class Ledger:
    rail: str
    by_id: dict[str, Known] = field(default_factory=dict)
    by_number: dict[str, Known] = field(default_factory=dict)
    by_reference: dict[str, Known] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)

    def add(self, step: Mapping[str, Any]) -> None:
        """Take one ``invoice_status`` record into account (any rail; others are ignored)."""
        if step["rail"] != self.rail:
            return
        refs: Mapping[str, str] = step.get("references") or {}
        if EVENT_ID in refs:
            self.seen.add(refs[EVENT_ID])
        if step["status"] != "delivered":
            return
        known = Known(step["invoice_id"], step["number"], step["customer"])
        self.by_id[known.invoice_id] = known
        self.by_number[known.number] = known
        for key, value in refs.items():
            if value and key not in NOT_INVOICE_REFERENCES:
                self.by_reference.setdefault(value, known)

    def add_all(self, steps: Iterable[Mapping[str, Any]]) -> Ledger:
        for step in steps:
            self.add(step)
        return self

    def resolve(self, refs: Iterable[InvoiceRef]) -> Known | None:
        """The first of ``refs`` that names an invoice this rail holds."""
        tables = {
            RefKind.INVOICE_ID: self.by_id,
            RefKind.NUMBER: self.by_number,
            RefKind.RAIL_REFERENCE: self.by_reference,
        }
        for ref in refs:
            if (known := tables[ref.kind].get(ref.value)) is not None:
                return known
        return None


def notification_record(
    note: Notification, known: Known, at: datetime, extra: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The ``invoice_status.v1`` step a notification publishes, keyed by ``known.invoice_id``.

    ``status`` is the payment status, ``rail_status`` the rail's event type, and
    ``references`` holds the event id (what makes a replay a no-op) and the ids the
    notification named, plus ``extra`` (a polled rail's ``amount_paid``). ``attempt`` is 0:
    no delivery attempt made it.
    """
    references = {EVENT_ID: note.event_id}
    for ref in note.refs:
        references.setdefault(ref.kind.value, ref.value)
    for key, value in (extra or {}).items():
        references.setdefault(key, value)
    return {
        "invoice_id": known.invoice_id,
        "number": known.number,
        "customer": known.customer,
        "rail": note.rail,
        "status": note.status.value,
        "attempt": 0,
        "references": references,
        "rail_status": note.event_type,
        "error_code": None,
        "error_message": None,
        "retry_at": None,
        "at": at,
    }
