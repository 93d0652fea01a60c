"""The e-invoicing half of billing: the catalog's seller and each customer's buyer details.

EN 16931 asks the same of both parties: a legal name, a postal address with its
country, and a VAT identifier whenever VAT is charged or reverse-charged. The
rules checked here are the ones a catalog can break; the UBL writer relies on them.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from . import fields as f
from .model import E_INVOICE_RAILS
from .problems import Path, Report
from .tax import Contact, PostalAddress, Seller, Tax, TaxCategory, Webhook

SELLER_FIELDS = ("legal_name", "address", "vat_id", "company_id", "contact")
ADDRESS_FIELDS = ("street", "city", "postal_zone", "country")
CONTACT_FIELDS = ("name", "email", "telephone")
TAX_FIELDS = ("category", "rate", "exemption_reason")
WEBHOOK_FIELDS = ("url", "secret_ref")
PROFILE_FIELDS = ("legal_name", "address", "vat_id", "tax", "payment_reference", "webhook")
"""The fields of a customer's ``billing`` this module reads."""

COUNTRY = re.compile(r"[A-Z]{2}\Z")
VAT_ID = re.compile(r"[A-Z]{2}[A-Za-z0-9+*.]{2,13}\Z")
"""A VAT identifier starts with its country's ISO 3166-1 alpha-2 code (EL for Greece)."""
SECRET_REF = re.compile(r"(env:[A-Za-z_][A-Za-z0-9_]*|file:/.+)\Z")
URL = re.compile(r"https?://[^\s/]+(/\S*)?\Z")
BUYER_VAT_NEEDED = (TaxCategory.REVERSE_CHARGE, TaxCategory.INTRA_COMMUNITY)


def parse_seller(r: Report, raw: Any, path: Path) -> Seller | None:
    if raw is None:
        return None
    m = f.mapping(r, raw, path, SELLER_FIELDS)
    if m is None:
        return None
    before = len(r.problems)
    name = f.text(r, m.get("legal_name"), (*path, "legal_name"))
    address = _address(r, m.get("address"), (*path, "address"), required=True)
    vat_id = _vat_id(r, m.get("vat_id"), (*path, "vat_id"))
    company_id = f.text(r, m.get("company_id"), (*path, "company_id"), required=False)
    contact = None
    if m.get("contact") is not None:
        c = f.mapping(r, m["contact"], (*path, "contact"), CONTACT_FIELDS) or {}
        contact = Contact(
            *(f.text(r, c.get(k), (*path, "contact", k), required=False) for k in CONTACT_FIELDS)
        )
    if name and address and len(r.problems) == before:
        return Seller(name, address, vat_id, company_id, contact)
    return None


def parse_profile(r: Report, m: dict[str, Any], path: Path, rail: str | None) -> dict[str, Any]:
    """The buyer fields of one ``billing`` mapping, as BillingProfile keyword arguments.

    On an e-invoicing rail, legal name, address and tax are required.
    """
    strict = rail in E_INVOICE_RAILS
    name = f.text(r, m.get("legal_name"), (*path, "legal_name"), required=strict)
    address = _address(r, m.get("address"), (*path, "address"), required=strict)
    vat_id = _vat_id(r, m.get("vat_id"), (*path, "vat_id"))
    tax = _tax(r, m.get("tax"), (*path, "tax"), required=strict)
    if tax is not None and tax.category in BUYER_VAT_NEEDED and "vat_id" not in m:
        r.add(
            (*path, "vat_id"),
            f"required: tax category {tax.category.value} names the buyer's VAT identifier",
        )
    reference = f.text(r, m.get("payment_reference"), (*path, "payment_reference"), required=False)
    webhook = _webhook(r, m.get("webhook"), (*path, "webhook"))
    return {
        "legal_name": name,
        "address": address,
        "vat_id": vat_id,
        "tax": tax,
        "payment_reference": reference,
        "webhook": webhook,
    }


def check_seller(
    r: Report, seller: Seller | None, customers: list[tuple[Path, str, Tax | None]]
) -> None:
    """The seller an e-invoicing customer's documents need: present, with a VAT id if taxed.

    ``customers`` are (path of billing, rail, tax) of every customer parsed.
    """
    for path, rail, tax in customers:
        if rail not in E_INVOICE_RAILS:
            continue
        if seller is None:
            r.add(("seller",), f"required: {r.where(path)} bills on the {rail} rail (e-invoices)")
            return
        if tax and tax.category is TaxCategory.NOT_SUBJECT and seller.company_id is None:
            r.add(
                ("seller", "company_id"),
                f"required: {r.where(path)} is not subject to VAT (O), where the seller's "
                "VAT id may not appear, so its trade register number identifies it",
            )
            return
        if tax and tax.category is not TaxCategory.NOT_SUBJECT and seller.vat_id is None:
            r.add(
                ("seller", "vat_id"),
                f"required: {r.where(path)} is invoiced under VAT category {tax.category.value}",
            )
            return


def _address(r: Report, raw: Any, path: Path, *, required: bool) -> PostalAddress | None:
    if raw is None:
        if required:
            r.add(path, f"required: a mapping with {', '.join(ADDRESS_FIELDS)}")
        return None
    m = f.mapping(r, raw, path, ADDRESS_FIELDS)
    if m is None:
        return None
    street, city, zone = (f.text(r, m.get(k), (*path, k)) for k in ADDRESS_FIELDS[:3])
    country = f.text(r, m.get("country"), (*path, "country"))
    if country is not None and not COUNTRY.match(country):
        r.add((*path, "country"), f"{country!r} must be an ISO 3166-1 alpha-2 code such as DE")
        country = None
    if street and city and zone and country:
        return PostalAddress(street, city, zone, country)
    return None


def _vat_id(r: Report, raw: Any, path: Path) -> str | None:
    vat_id = f.text(r, raw, path, required=False)
    if vat_id is not None and not VAT_ID.match(vat_id):
        r.add(path, f"{vat_id!r} must start with a two-letter country code, such as DE123456789")
        return None
    return vat_id


def _tax(r: Report, raw: Any, path: Path, *, required: bool) -> Tax | None:
    if raw is None:
        if required:
            r.add(path, "required: a mapping with category (S, Z, E, AE, K, G or O) and rate")
        return None
    m = f.mapping(r, raw, path, TAX_FIELDS)
    if m is None:
        return None
    category = f.choice(r, m.get("category"), (*path, "category"), TaxCategory)
    standard = category is TaxCategory.STANDARD
    rate = f.decimal(r, m.get("rate"), (*path, "rate"), required=standard)
    reason = f.text(r, m.get("exemption_reason"), (*path, "exemption_reason"), required=False)
    if category is None:
        return None
    if standard and rate is not None and not Decimal(0) < rate < 100:
        r.add((*path, "rate"), f"a standard rate must be above 0 and below 100, got {rate}")
        return None
    if not standard and rate:
        r.add((*path, "rate"), f"category {category.value} has no VAT: the rate must be 0")
        return None
    if category is TaxCategory.EXEMPT and reason is None:
        r.add((*path, "exemption_reason"), "required: an exempt supply states why (BR-E-10)")
        return None
    if standard and reason is not None:
        r.add((*path, "exemption_reason"), "only a category without VAT has an exemption reason")
        return None
    if rate is None and standard:
        return None
    return Tax(category, rate or Decimal(0), reason)


def _webhook(r: Report, raw: Any, path: Path) -> Webhook | None:
    if raw is None:
        return None
    m = f.mapping(r, raw, path, WEBHOOK_FIELDS)
    if m is None:
        return None
    url = f.text(r, m.get("url"), (*path, "url"))
    if url is not None and not URL.match(url):
        r.add((*path, "url"), f"{url!r} is not an http(s) URL")
        url = None
    ref = f.text(r, m.get("secret_ref"), (*path, "secret_ref"))
    if ref is not None and not SECRET_REF.match(ref):
        r.add(
            (*path, "secret_ref"),
            "must name where the secret is kept, env:VARIABLE or file:/path; "
            "never the secret itself",
        )
        ref = None
    return Webhook(url, ref) if url and ref else None
