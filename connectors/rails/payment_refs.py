"""The payment each delivered invoice was collected by, as its delivery outcome recorded it.

A refund names the payment it gives money back from (Adyen: the ``pspReference`` of
``POST /payments``). The rail learns it when it charges the invoice, and the runner
publishes it with the outcome (the ``delivered`` step's ``references``), so a
connector started after that, by a restart or on another machine, reads it back from
``invoices.status`` instead of refusing the refund.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from connectors.rails.status_feed import StatusFeed
from streams.settings import Settings

PSP_REFERENCE = "pspReference"


class PaymentReferences(Protocol):
    def psp_reference(self, invoice_id: str) -> str | None: ...

    def record(self, invoice_id: str, psp_reference: str) -> None: ...


@runtime_checkable
class RefundsRecordedPayments(Protocol):
    """A rail whose refunds need the payment references of earlier deliveries."""

    payments: PaymentReferences


class RecordedPayments:
    """``rail``'s payment references: those it recorded, then those on ``invoices.status``."""

    def __init__(self, settings: Settings, rail: str, feed: StatusFeed | None = None) -> None:
        self.rail = rail
        self.feed = feed or StatusFeed(settings, f"railyard-{rail}-payments")
        self.by_invoice: dict[str, str] = {}

    def psp_reference(self, invoice_id: str) -> str | None:
        if invoice_id not in self.by_invoice:
            for step in self.feed.read_new():
                reference = (step.get("references") or {}).get(PSP_REFERENCE)
                if step["rail"] == self.rail and step["status"] == "delivered" and reference:
                    # A credit note's own refund carries one too, under its own invoice id.
                    self.by_invoice.setdefault(step["invoice_id"], reference)
        return self.by_invoice.get(invoice_id)

    def record(self, invoice_id: str, psp_reference: str) -> None:
        self.by_invoice[invoice_id] = psp_reference


def attach_recorded_payments(rail: object, settings: Settings) -> None:
    """Give ``rail`` the references recorded on ``invoices.status``, if it refunds payments."""
    if isinstance(rail, RefundsRecordedPayments):
        rail.payments = RecordedPayments(settings, str(getattr(rail, "name", "")))
