"""Invoices to and from their Avro records (``avro/invoice.v1.avsc``), exactly.

Decimals come back from Avro at the schema's scale (``10.000000000``); they are
equal to what was written, and :func:`invoice_from_record` normalises amounts to
the currency's minor unit so a decoded invoice compares and prints like the one
that was issued. Timestamps come back as aware UTC datetimes (timestamp-micros).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from streams.domain.catalog import minor_units
from streams.domain.invoice import (
    CreditApplication,
    DocumentKind,
    Invoice,
    InvoiceLine,
    LineKind,
    TierSlice,
)
from streams.wire.records import INVOICES


def invoice_to_record(inv: Invoice) -> dict[str, Any]:
    return {
        "id": inv.id,
        "number": inv.number,
        "kind": inv.kind.value,
        "customer": inv.customer,
        "customer_name": inv.customer_name,
        "rail": inv.rail,
        "account": inv.account,
        "currency": inv.currency,
        "period_start": inv.period_start,
        "period_end": inv.period_end,
        "lines": [_line(line) for line in inv.lines],
        "credits": [{"grant": c.grant, "amount": c.amount} for c in inv.credits],
        "subtotal": inv.subtotal,
        "discount_total": inv.discount_total,
        "commitment_true_up": inv.commitment_true_up,
        "credits_total": inv.credits_total,
        "total": inv.total,
        "idempotency_key": inv.idempotency_key,
        "catalog_version": inv.catalog_version,
        "issued_at": inv.issued_at,
    }


def _line(line: InvoiceLine) -> dict[str, Any]:
    return {
        "kind": line.kind.value,
        "description": line.description,
        "amount": line.amount,
        "price_key": line.price_key,
        "meter": line.meter,
        "dimensions": [{"name": k, "value": v} for k, v in line.dimensions],
        "quantity": _norm(line.quantity),
        "unit_amount": _norm(line.unit_amount),
        "tiers": [
            {
                "up_to": _norm(t.up_to),
                "quantity": _norm(t.quantity),
                "unit_amount": _norm(t.unit_amount),
                "flat_amount": _norm(t.flat_amount),
                "amount": _norm(t.amount),
            }
            for t in line.tiers
        ],
        "service_start": line.service_start,
        "service_end": line.service_end,
    }


def _norm(value: Decimal | None) -> Decimal | None:
    """Drop trailing zeros past the point: Avro refuses more places than the schema's scale
    even when they are zeros (``1.0000000000000000000`` has 19)."""
    if value is None:
        return None
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()


def invoice_from_record(rec: dict[str, Any]) -> Invoice:
    places = minor_units(rec["currency"])
    money = (lambda d: d.quantize(Decimal(1).scaleb(-places))) if places is not None else _plain

    return Invoice(
        id=rec["id"],
        number=rec["number"],
        kind=DocumentKind(rec["kind"]),
        customer=rec["customer"],
        customer_name=rec["customer_name"],
        rail=rec["rail"],
        account=rec["account"],
        currency=rec["currency"],
        period_start=(rec["period_start"]),
        period_end=(rec["period_end"]),
        lines=tuple(
            InvoiceLine(
                kind=LineKind(ln["kind"]),
                description=ln["description"],
                amount=money(ln["amount"]),
                price_key=ln["price_key"],
                meter=ln["meter"],
                dimensions=tuple((d["name"], d["value"]) for d in ln["dimensions"]),
                quantity=_opt(ln["quantity"]),
                unit_amount=_opt(ln["unit_amount"]),
                tiers=tuple(
                    TierSlice(
                        up_to=_opt(t["up_to"]),
                        quantity=_plain(t["quantity"]),
                        unit_amount=_plain(t["unit_amount"]),
                        flat_amount=_plain(t["flat_amount"]),
                        amount=_plain(t["amount"]),
                    )
                    for t in ln["tiers"]
                ),
                service_start=(ln["service_start"]),
                service_end=(ln["service_end"]),
            )
            for ln in rec["lines"]
        ),
        credits=tuple(CreditApplication(c["grant"], money(c["amount"])) for c in rec["credits"]),
        subtotal=money(rec["subtotal"]),
        discount_total=money(rec["discount_total"]),
        commitment_true_up=money(rec["commitment_true_up"]),
        credits_total=money(rec["credits_total"]),
        total=money(rec["total"]),
        idempotency_key=rec["idempotency_key"],
        catalog_version=rec["catalog_version"],
        issued_at=(rec["issued_at"]),
    )


def _plain(d: Decimal) -> Decimal:
    return _norm(d) or Decimal(0)


def _opt(d: Decimal | None) -> Decimal | None:
    return None if d is None else _plain(d)


def encode_invoice(inv: Invoice) -> bytes:
    return INVOICES.encode(invoice_to_record(inv))


def decode_invoice(payload: bytes) -> Invoice:
    return invoice_from_record(INVOICES.decode(payload))


def invoice_to_json(inv: Invoice) -> dict[str, Any]:
    """A JSON-ready invoice: amounts as exact decimal strings, instants as ISO 8601."""
    doc: dict[str, Any] = _jsonable(invoice_to_record(inv))
    return doc


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value
