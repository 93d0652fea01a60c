"""The records a rail connector publishes: status steps and dead letters.

Pure builders, so what lands on ``invoices.status`` and ``invoices.dlq`` is
decided here and tested without a broker. Statuses are keyed by invoice id.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from connectors.rails.base import Delivery
from streams.domain.invoice import Invoice


class DeliveryStatus(StrEnum):
    DELIVERED = "delivered"
    RETRYING = "retrying"
    """A transient failure; the next attempt is scheduled at ``retry_at``."""
    FAILED = "failed"
    """Given up for good; the invoice is in ``invoices.dlq``."""


class DeadLetterReason(StrEnum):
    REJECTED = "rejected"
    """The rail refused the invoice (a permanent error)."""
    EXHAUSTED = "exhausted"
    """Transient failures went on past the retry limits."""
    UNDECODABLE = "undecodable"
    """The record on the rail's topic is not a readable invoice."""
    MISROUTED = "misrouted"
    """The invoice names another rail than the topic it was read from."""


def status_record(
    invoice: Invoice,
    rail: str,
    status: DeliveryStatus,
    attempt: int,
    at: datetime,
    *,
    delivery: Delivery | None = None,
    error_code: str | None = None,
    error_message: str | None = None,
    retry_at: datetime | None = None,
) -> dict[str, Any]:
    """An ``invoice_status.v1`` record."""
    return {
        "invoice_id": invoice.id,
        "number": invoice.number,
        "customer": invoice.customer,
        "rail": rail,
        "status": status.value,
        "attempt": attempt,
        "references": dict(delivery.references) if delivery else {},
        "rail_status": delivery.status if delivery else None,
        "error_code": error_code,
        "error_message": error_message,
        "retry_at": retry_at,
        "at": at,
    }


def dead_letter_record(
    rail: str,
    reason: DeadLetterReason,
    *,
    invoice: Invoice | None,
    error_code: str | None,
    error_message: str,
    attempts: int,
    topic: str,
    partition: int,
    offset: int,
    original: bytes,
    failed_at: datetime,
) -> dict[str, Any]:
    """An ``invoice_dead_letter.v1`` record, carrying the original bytes as read."""
    return {
        "rail": rail,
        "invoice_id": invoice.id if invoice else None,
        "number": invoice.number if invoice else None,
        "customer": invoice.customer if invoice else None,
        "reason": reason.value,
        "error_code": error_code,
        "error_message": error_message,
        "attempts": attempts,
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "original": original,
        "failed_at": failed_at,
    }
