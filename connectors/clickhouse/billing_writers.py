"""Sink writers for the billing topics: invoices (and their lines), spend, credit events."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from confluent_kafka import Message

from connectors.kafka.consumed import value_of
from streams.domain.rating.assemble import usage_amount
from streams.wire.invoices import decode_invoice
from streams.wire.records import CREDIT_EVENTS, SPEND


class InvoicesWriter:
    table = "invoices_raw"
    columns = (
        "id",
        "number",
        "kind",
        "customer",
        "customer_name",
        "rail",
        "account",
        "currency",
        "period_start",
        "period_end",
        "usage_amount",
        "subtotal",
        "discount_total",
        "commitment_true_up",
        "credits_total",
        "total",
        "idempotency_key",
        "catalog_version",
        "issued_at",
    )

    def rows(self, msg: Message) -> Iterable[Sequence[Any]]:
        i = decode_invoice(value_of(msg))
        usage = usage_amount(i)
        yield (
            i.id,
            i.number,
            i.kind.value,
            i.customer,
            i.customer_name,
            i.rail,
            i.account,
            i.currency,
            i.period_start,
            i.period_end,
            usage,
            i.subtotal,
            i.discount_total,
            i.commitment_true_up,
            i.credits_total,
            i.total,
            i.idempotency_key,
            i.catalog_version,
            i.issued_at,
        )


class InvoiceLinesWriter:
    table = "invoice_lines_raw"
    columns = (
        "invoice_id",
        "line_no",
        "customer",
        "rail",
        "currency",
        "period_start",
        "kind",
        "description",
        "price_key",
        "meter",
        "dimensions",
        "quantity",
        "unit_amount",
        "amount",
        "tiers",
    )

    def rows(self, msg: Message) -> Iterable[Sequence[Any]]:
        i = decode_invoice(value_of(msg))
        for n, ln in enumerate(i.lines, start=1):
            tiers = json.dumps(
                [
                    {
                        "up_to": None if t.up_to is None else str(t.up_to),
                        "quantity": str(t.quantity),
                        "unit_amount": str(t.unit_amount),
                        "flat_amount": str(t.flat_amount),
                        "amount": str(t.amount),
                    }
                    for t in ln.tiers
                ]
            )
            yield (
                i.id,
                n,
                i.customer,
                i.rail,
                i.currency,
                i.period_start,
                ln.kind.value,
                ln.description,
                ln.price_key,
                ln.meter,
                dict(ln.dimensions),
                ln.quantity,
                ln.unit_amount,
                ln.amount,
                tiers,
            )


class SpendWriter:
    table = "billing_spend_raw"
    columns = (
        "customer",
        "currency",
        "period_start",
        "period_end",
        "usage_amount",
        "subtotal",
        "credits_total",
        "total",
        "as_of",
        "revision",
    )

    def rows(self, msg: Message) -> Iterable[Sequence[Any]]:
        s = SPEND.decode(value_of(msg))
        yield (
            s["customer"],
            s["currency"],
            s["period_start"],
            s["period_end"],
            s["usage_amount"],
            s["subtotal"],
            s["credits_total"],
            s["total"],
            s["as_of"],
            s["revision"],
        )


class CreditBalancesWriter:
    table = "credit_balances_raw"
    columns = (
        "customer",
        "grant",
        "currency",
        "granted",
        "consumed",
        "remaining",
        "expires_at",
        "as_of",
        "revision",
    )

    def rows(self, msg: Message) -> Iterable[Sequence[Any]]:
        s = SPEND.decode(value_of(msg))
        for b in s["balances"]:
            yield (
                s["customer"],
                b["grant"],
                s["currency"],
                b["granted"],
                b["consumed"],
                b["remaining"],
                b["expires_at"],
                s["as_of"],
                s["revision"],
            )


class CreditEventsWriter:
    table = "credit_events_raw"
    columns = ("customer", "grant", "kind", "percent", "remaining", "currency", "at")

    def rows(self, msg: Message) -> Iterable[Sequence[Any]]:
        e = CREDIT_EVENTS.decode(value_of(msg))
        yield (
            e["customer"],
            e["grant"],
            e["kind"],
            e["percent"],
            e["remaining"],
            e["currency"],
            e["at"],
        )
