"""Rail delivery in the store: sink writers for ``invoices.status`` and ``invoices.dlq``,
and the queries behind ``railyard invoices --status`` (pure functions returning SQL).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from confluent_kafka import Message

from connectors.clickhouse.sql import literal
from streams.wire.records import INVOICE_DEAD_LETTERS, INVOICE_STATUS


class InvoiceStatusWriter:
    table = "invoice_status_raw"
    columns = (
        "invoice_id",
        "number",
        "customer",
        "rail",
        "status",
        "attempt",
        "rail_refs",
        "rail_status",
        "error_code",
        "error_message",
        "retry_at",
        "at",
    )

    def rows(self, msg: Message) -> Iterable[Sequence[Any]]:
        s = INVOICE_STATUS.decode(msg.value() or b"")
        yield (
            s["invoice_id"],
            s["number"],
            s["customer"],
            s["rail"],
            s["status"],
            s["attempt"],
            s["references"],
            s["rail_status"],
            s["error_code"],
            s["error_message"],
            s["retry_at"],
            s["at"],
        )


class InvoiceDeadLettersWriter:
    table = "invoice_dead_letters_raw"
    columns = (
        "rail",
        "invoice_id",
        "number",
        "customer",
        "reason",
        "error_code",
        "error_message",
        "attempts",
        "topic",
        "kafka_partition",
        "kafka_offset",
        "original",
        "failed_at",
    )

    def rows(self, msg: Message) -> Iterable[Sequence[Any]]:
        d = INVOICE_DEAD_LETTERS.decode(msg.value() or b"")
        yield (
            d["rail"],
            d["invoice_id"],
            d["number"],
            d["customer"],
            d["reason"],
            d["error_code"],
            d["error_message"],
            d["attempts"],
            d["topic"],
            d["partition"],
            d["offset"],
            d["original"],
            d["failed_at"],
        )


def _rail_filter(column: str, rail: str | None) -> str:
    return f"WHERE {column} = {literal(rail)}" if rail else ""


def status_sql(rail: str | None = None, limit: int = 50) -> str:
    """Every issued or delivered invoice and where it stands, newest first.

    ``status`` is the delivery's; ``payment`` the latest the rail notified (paid,
    payment_failed, refunded, disputed, voided), NULL before any notification.
    Issued invoices no connector has reported on yet are ``pending``; statuses of
    invoices the store has not seen issued (published straight to a rail topic)
    are shown too.
    """
    return f"""
SELECT if(i.id = '', d.rail, i.rail) AS rail,
       if(i.id = '', d.invoice_id, i.id) AS invoice_id,
       if(i.id = '', d.number, i.number) AS number,
       if(i.id = '', d.customer, i.customer) AS customer,
       if(d.invoice_id = '', 'pending', d.status) AS status,
       d.attempts AS attempts,
       d.rail_refs AS rail_refs,
       d.error_message AS error,
       if(d.invoice_id = '', i.issued_at, d.updated_at) AS updated_at,
       d.payment_status AS payment
FROM invoices AS i
FULL OUTER JOIN invoice_delivery AS d ON i.id = d.invoice_id
{_rail_filter("if(i.id = '', d.rail, i.rail)", rail)}
ORDER BY updated_at DESC, invoice_id
LIMIT {int(limit)}""".strip()


def counts_sql(rail: str | None = None) -> str:
    """Per rail: invoices pending, delivered, retrying and failed."""
    return f"""
SELECT rail,
       countIf(status = 'pending') AS pending,
       countIf(status = 'delivered') AS delivered,
       countIf(status = 'retrying') AS retrying,
       countIf(status = 'failed') AS failed
FROM ({status_sql(rail, limit=1_000_000_000)})
GROUP BY rail
ORDER BY rail""".strip()


def revenue_sql(rail: str | None = None) -> str:
    """Per rail and currency: issued, collected, outstanding, failed and refunded
    (the ``revenue_status`` view, migration 0009; the rule is in ``docs/rails.md``)."""
    return f"""
SELECT rail, currency, invoices, issued, collected, outstanding, failed, refunded
FROM revenue_status
{_rail_filter("rail", rail)}
ORDER BY rail, currency""".strip()
