"""The catalog as canonical JSON, for a compacted topic: exact both ways.

Amounts are strings (``"0.000002"``), instants UTC ISO 8601, so decoding gives
back equal Decimals and datetimes and encoding again gives the same bytes. A
``format`` number lets a future reader refuse a document it does not understand;
format 1 (before credits, terms, included units and rounding) is still read, with
the defaults those fields have. The e-invoicing fields (the catalog's ``seller``, a
customer's legal name, address, VAT id, tax, payment reference and webhook) are
written only when set, so a catalog without them keeps its version.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from streams.domain.errors import ConfigError
from streams.domain.meters import Aggregation, Meter

from .model import (
    DEFAULT_CREDIT_THRESHOLDS,
    BillingProfile,
    Contract,
    CreditGrant,
    Customer,
    Plan,
    Rounding,
    RoutingRule,
    Segment,
    SubjectAssignment,
    Subscription,
)
from .prices import (
    DimensionPrice,
    DimensionRate,
    FlatPrice,
    GraduatedPrice,
    PackagePrice,
    Price,
    PriceModel,
    Tier,
    UnitPrice,
    VolumePrice,
)
from .tax import Contact, PostalAddress, Seller, Tax, TaxCategory, Webhook

if TYPE_CHECKING:
    from .catalog import Catalog

FORMAT = 2
READABLE = (1, FORMAT)
Doc = dict[str, Any]


def encode(c: Catalog) -> Doc:
    seller = {} if c.seller is None else {"seller": _seller(c.seller)}
    return seller | {
        "format": FORMAT,
        "rounding": c.rounding.value,
        "credit_thresholds": list(c.credit_thresholds),
        "meters": [_meter(m) for m in c.meters],
        "routing": [{"rail": r.rail, "segment": r.segment, "region": r.region} for r in c.routing],
        "customers": [_customer(x) for x in c.customers],
        "assignments": [
            {"subject": a.subject, "customer": a.customer, **_period(a)} for a in c.assignments
        ],
        "plans": [
            {
                "key": p.key,
                "name": p.name,
                "currency": p.currency,
                "rate_card": _prices(p.rate_card),
                "discount_percent": _dec(p.discount_percent),
                "maximum_spend": _dec(p.maximum_spend),
            }
            for p in c.plans
        ],
        "subscriptions": [_subscription(s) for s in c.subscriptions],
    }


def decode(text: str | bytes) -> Doc:
    """The keyword arguments of the Catalog that ``text`` encodes."""
    try:
        doc = json.loads(text)
        if doc.get("format") not in READABLE or type(doc["format"]) is not int:
            raise ValueError(f"format {doc.get('format')!r}, expected one of {READABLE}")
        if doc["format"] == 1:
            doc = _from_format_1(doc)
        return {
            "rounding": Rounding(doc["rounding"]),
            "credit_thresholds": tuple(_to_int(t) for t in doc["credit_thresholds"]),
            "meters": tuple(_to_meter(m) for m in doc["meters"]),
            "routing": tuple(
                RoutingRule(r["rail"], _opt(Segment, r["segment"]), r["region"])
                for r in doc["routing"]
            ),
            "customers": tuple(_to_customer(x) for x in doc["customers"]),
            "assignments": tuple(
                SubjectAssignment(a["subject"], a["customer"], *_to_period(a))
                for a in doc["assignments"]
            ),
            "plans": tuple(
                Plan(
                    p["key"],
                    p["currency"],
                    _to_prices(p["rate_card"]),
                    p["name"],
                    _opt(_to_dec, p["discount_percent"]),
                    _opt(_to_dec, p["maximum_spend"]),
                )
                for p in doc["plans"]
            ),
            "subscriptions": tuple(_to_subscription(s) for s in doc["subscriptions"]),
            "seller": _opt(_to_seller, doc.get("seller")),
        }
    except (AttributeError, KeyError, TypeError, ValueError, InvalidOperation) as exc:
        raise ConfigError(f"not a catalog document: {exc!r}") from exc


def _from_format_1(doc: Doc) -> Doc:
    """A format 1 document with the defaults of every field format 2 added."""
    terms = {"discount_percent": None, "maximum_spend": None}
    usage = {"included": "0"}

    def prices(docs: list[Doc]) -> list[Doc]:
        return [d if d["model"] == PriceModel.FLAT else usage | d for d in docs]

    return doc | {
        "rounding": Rounding.HALF_EVEN.value,
        "credit_thresholds": list(DEFAULT_CREDIT_THRESHOLDS),
        "customers": [{"credits": []} | c for c in doc["customers"]],
        "plans": [terms | p | {"rate_card": prices(p["rate_card"])} for p in doc["plans"]],
        "subscriptions": [
            s
            if s["contract"] is None
            else s
            | {"contract": terms | s["contract"] | {"prices": prices(s["contract"]["prices"])}}
            for s in doc["subscriptions"]
        ],
    }


def _meter(m: Meter) -> Doc:
    return {
        "key": m.key,
        "event_type": m.event_type,
        "aggregation": m.aggregation,
        "value_property": m.value_property,
        "group_by": list(m.group_by),
        "filters": {k: list(v) for k, v in m.filters.items()},
        "description": m.description,
    }


def _to_meter(d: Doc) -> Meter:
    return Meter(
        key=d["key"],
        event_type=d["event_type"],
        aggregation=Aggregation(d["aggregation"]),
        value_property=d["value_property"],
        group_by=tuple(d["group_by"]),
        filters={k: tuple(v) for k, v in d["filters"].items()},
        description=d["description"],
    )


def _customer(c: Customer) -> Doc:
    b = c.billing
    billing = {
        "currency": b.currency,
        "anchor_day": b.anchor_day,
        "rail": b.rail,
        "segment": b.segment,
        "region": b.region,
        "account": b.account,
        **_profile(b),
    }
    credits = [
        {
            "key": g.key,
            "amount": str(g.amount),
            "currency": g.currency,
            "effective_from": _instant(g.effective_from),
            "expires_at": g.expires_at and _instant(g.expires_at),
            "priority": g.priority,
        }
        for g in c.credits
    ]
    return {"key": c.key, "name": c.name, "billing": billing, "credits": credits}


def _to_customer(d: Doc) -> Customer:
    b = d["billing"]
    if type(b["anchor_day"]) is not int:
        raise TypeError(f"anchor_day {b['anchor_day']!r} is not an integer")
    profile = BillingProfile(
        b["currency"],
        b["anchor_day"],
        b["rail"],
        Segment(b["segment"]),
        b["region"],
        b["account"],
        legal_name=b.get("legal_name"),
        address=_opt(_to_address, b.get("address")),
        vat_id=b.get("vat_id"),
        tax=_opt(_to_tax, b.get("tax")),
        payment_reference=b.get("payment_reference"),
        webhook=_opt(lambda w: Webhook(w["url"], w["secret_ref"]), b.get("webhook")),
    )
    return Customer(d["key"], d["name"], profile, tuple(_to_grant(g) for g in d["credits"]))


def _profile(b: BillingProfile) -> Doc:
    """The e-invoicing and per-rail fields that are set (absent ones are not written)."""
    doc: Doc = {
        "legal_name": b.legal_name,
        "address": b.address and _address(b.address),
        "vat_id": b.vat_id,
        "tax": b.tax
        and {
            "category": b.tax.category.value,
            "rate": str(b.tax.rate),
            "exemption_reason": b.tax.exemption_reason,
        },
        "payment_reference": b.payment_reference,
        "webhook": b.webhook and {"url": b.webhook.url, "secret_ref": b.webhook.secret_ref},
    }
    return {k: v for k, v in doc.items() if v is not None}


def _address(a: PostalAddress) -> Doc:
    return {"street": a.street, "city": a.city, "postal_zone": a.postal_zone, "country": a.country}


def _to_address(d: Doc) -> PostalAddress:
    return PostalAddress(d["street"], d["city"], d["postal_zone"], d["country"])


def _to_tax(d: Doc) -> Tax:
    return Tax(TaxCategory(d["category"]), _to_dec(d["rate"]), d["exemption_reason"])


def _seller(s: Seller) -> Doc:
    contact = s.contact and {
        "name": s.contact.name,
        "email": s.contact.email,
        "telephone": s.contact.telephone,
    }
    return {
        "legal_name": s.legal_name,
        "address": _address(s.address),
        "vat_id": s.vat_id,
        "company_id": s.company_id,
        "contact": contact,
    }


def _to_seller(d: Doc) -> Seller:
    c = d["contact"]
    contact = c and Contact(c["name"], c["email"], c["telephone"])
    return Seller(
        d["legal_name"], _to_address(d["address"]), d["vat_id"], d["company_id"], contact or None
    )


def _to_int(value: Any) -> int:
    if type(value) is not int:
        raise TypeError(f"{value!r} is not an integer")
    return value


def _to_grant(d: Doc) -> CreditGrant:
    return CreditGrant(
        d["key"],
        _to_dec(d["amount"]),
        d["currency"],
        _to_instant(d["effective_from"]),
        _opt(_to_instant, d["expires_at"]),
        _to_int(d["priority"]),
    )


def _subscription(s: Subscription) -> Doc:
    contract = s.contract and {
        "reference": s.contract.reference,
        "minimum_commitment": _dec(s.contract.minimum_commitment),
        "prices": _prices(s.contract.prices),
        "discount_percent": _dec(s.contract.discount_percent),
        "maximum_spend": _dec(s.contract.maximum_spend),
    }
    return {"customer": s.customer, "plan": s.plan, **_period(s), "contract": contract}


def _to_subscription(d: Doc) -> Subscription:
    c = d["contract"]
    contract = c and Contract(
        c["reference"],
        _opt(_to_dec, c["minimum_commitment"]),
        _to_prices(c["prices"]),
        _opt(_to_dec, c["discount_percent"]),
        _opt(_to_dec, c["maximum_spend"]),
    )
    return Subscription(d["customer"], d["plan"], *_to_period(d), contract or None)


def _period(item: SubjectAssignment | Subscription) -> Doc:
    end = item.effective_to
    return {"effective_from": _instant(item.effective_from), "effective_to": end and _instant(end)}


def _to_period(d: Doc) -> tuple[datetime, datetime | None]:
    return _to_instant(d["effective_from"]), _opt(_to_instant, d["effective_to"])


def _instant(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def _to_instant(text: str) -> datetime:
    at = datetime.fromisoformat(text)
    if at.tzinfo is None:
        raise ValueError(f"naive instant {text!r}")
    return at


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _to_dec(text: str) -> Decimal:
    if not isinstance(text, str):  # a float here would already have lost digits
        raise TypeError(f"amount {text!r} must be a string")
    return Decimal(text)


def _opt(convert: Callable[[Any], Any], value: Any) -> Any:
    return None if value is None else convert(value)


def _prices(prices: tuple[Price, ...]) -> list[Doc]:
    return [
        {
            "key": p.key,
            "meter": p.meter,
            "model": p.model,
            **PRICE_CODECS[p.model][0](p),
            **({} if isinstance(p, FlatPrice) else {"included": str(p.included)}),
        }
        for p in prices
    ]


def _to_prices(docs: list[Doc]) -> tuple[Price, ...]:
    out: list[Price] = []
    for d in docs:
        price = PRICE_CODECS[PriceModel(d["model"])][1](d)
        if not isinstance(price, FlatPrice):
            price = replace(price, included=_to_dec(d["included"]))
        out.append(price)
    return tuple(out)


def _tiers(tiers: tuple[Tier, ...]) -> list[Doc]:
    return [
        {
            "up_to": _dec(t.up_to),
            "unit_amount": str(t.unit_amount),
            "flat_amount": str(t.flat_amount),
        }
        for t in tiers
    ]


def _to_tiers(docs: list[Doc]) -> tuple[Tier, ...]:
    return tuple(
        Tier(_opt(_to_dec, t["up_to"]), _to_dec(t["unit_amount"]), _to_dec(t["flat_amount"]))
        for t in docs
    )


def _dimension(p: Any) -> Doc:
    return {
        "dimensions": list(p.dimensions),
        "rates": [{"values": list(r.values), "unit_amount": str(r.unit_amount)} for r in p.rates],
        "default_unit_amount": _dec(p.default_unit_amount),
    }


def _to_dimension(d: Doc) -> DimensionPrice:
    rates = tuple(DimensionRate(tuple(r["values"]), _to_dec(r["unit_amount"])) for r in d["rates"])
    default = _opt(_to_dec, d["default_unit_amount"])
    return DimensionPrice(d["key"], d["meter"], tuple(d["dimensions"]), rates, default)


PRICE_CODECS: dict[PriceModel, tuple[Callable[[Any], Doc], Callable[[Doc], Price]]] = {
    PriceModel.FLAT: (
        lambda p: {"amount": str(p.amount)},
        lambda d: FlatPrice(d["key"], _to_dec(d["amount"]), d["meter"]),
    ),
    PriceModel.PER_UNIT: (
        lambda p: {"unit_amount": str(p.unit_amount)},
        lambda d: UnitPrice(d["key"], d["meter"], _to_dec(d["unit_amount"])),
    ),
    PriceModel.GRADUATED: (
        lambda p: {"tiers": _tiers(p.tiers)},
        lambda d: GraduatedPrice(d["key"], d["meter"], _to_tiers(d["tiers"])),
    ),
    PriceModel.VOLUME: (
        lambda p: {"tiers": _tiers(p.tiers)},
        lambda d: VolumePrice(d["key"], d["meter"], _to_tiers(d["tiers"])),
    ),
    PriceModel.PACKAGE: (
        lambda p: {"package_size": str(p.package_size), "amount": str(p.amount)},
        lambda d: PackagePrice(
            d["key"], d["meter"], _to_dec(d["package_size"]), _to_dec(d["amount"])
        ),
    ),
    PriceModel.DIMENSION: (_dimension, _to_dimension),
}
"""How each price model is written and read; a test holds it to every PriceModel."""
