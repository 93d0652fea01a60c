"""A catalog (YAML) that claims every customer of a synthetic workload.

For benchmarks and tests that generate their own customers: the example catalog's
meters, and one customer with all its subjects per generated profile.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from streams.domain.catalog import E_INVOICE_RAILS

from .model import CustomerProfile

ALL_RAILS = {
    "self_service": ("stripe", "adyen", "paypal", "webhook"),
    "enterprise": ("netsuite", "sap", "salesforce", "outbox"),
}
"""Every built-in rail, by the segment that usually pays through it."""
SELLER_YAML = (
    "legal_name: Railyard Workload Ltd",
    "address: {street: 2 Quay Street, city: Cork, postal_zone: T12, country: IE}",
    "vat_id: IE3668997OH",
)
"""The catalog's seller, which an e-invoicing rail's customers need."""


def catalog_yaml(meters_yaml: str, customers: Iterable[CustomerProfile]) -> str:
    """``meters_yaml`` is a ``meters:`` section; customers are claimed from 2020 on.

    Customers take the card and ERP rails in turn (no billing details beyond those).
    """
    profiles = list(customers)
    rails = {
        "self_service": ALL_RAILS["self_service"][:3],
        "enterprise": ALL_RAILS["enterprise"][:3],
    }
    return "\n".join([meters_yaml.rstrip(), *_parties(profiles, rails)]) + "\n"


def _parties(
    profiles: list[CustomerProfile],
    rails: Mapping[str, tuple[str, ...]],
    anchor_days: tuple[int, ...] | None = None,
) -> list[str]:
    """The ``customers:`` and ``subjects:`` sections: one customer per profile, each on a
    rail of its segment in turn, owning all its subjects from 2020 on."""
    lines = ["", "customers:"]
    for i, c in enumerate(profiles):
        ring = rails[str(c.segment)]
        lines += [f"  - key: {c.name}", "    billing:", f"      currency: {c.currency}"]
        if anchor_days:
            lines += [
                f"      anchor_day: {anchor_days[i % len(anchor_days)]}",
                f"      account: acct-{i:04d}",
            ]
        rail = ring[i % len(ring)]
        lines += [f"      rail: {rail}", f"      segment: {c.segment}", f"      region: {c.region}"]
        if rail in E_INVOICE_RAILS:  # an e-invoice names the buyer and its VAT
            lines += [
                f"      legal_name: {c.name} Ltd",
                "      address: {street: 1 Main Street, city: Dublin, postal_zone: D01, "
                "country: IE}",
                "      vat_id: IE6388047V",
                "      tax: {category: AE}",
            ]
    if any(rail in E_INVOICE_RAILS for ring in rails.values() for rail in ring):
        lines += ["", "seller:", *(f"  {line}" for line in SELLER_YAML)]
    lines += ["", "subjects:"]
    for c in profiles:
        lines += [
            f"  - customer: {c.name}",
            "    effective_from: 2020-01-01T00:00:00Z",
            f"    subjects: [{', '.join(c.subjects)}]",
        ]
    return lines


def top_level_sections(yaml_text: str, *keys: str) -> str:
    """The text of the named top-level sections of a YAML document, comments and all."""
    out: list[str] = []
    keep = False
    for line in yaml_text.splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            keep = line.split(":", 1)[0] in keys
        if keep:
            out.append(line)
    return "\n".join(out) + "\n"


def billing_catalog_yaml(
    example_yaml: str, customers: Iterable[CustomerProfile], anchor_days: tuple[int, ...] = (1,)
) -> str:
    """A catalog that bills every generated customer: the example's meters and plans,
    each customer on a rail of its segment (all eight rails in turn), self-service ones
    on Starter or Pro, enterprise ones on Enterprise, in the customer's currency.
    """
    profiles = list(customers)
    lines = [
        top_level_sections(example_yaml, "meters", "plans").rstrip(),
        *_parties(profiles, ALL_RAILS, anchor_days),
        "",
        "subscriptions:",
    ]
    for i, c in enumerate(profiles):
        tier = "enterprise" if str(c.segment) == "enterprise" else ("starter", "pro")[i % 2]
        lines += [
            f"  - customer: {c.name}",
            f"    plan: {tier}-{c.currency.lower()}",
            "    effective_from: 2020-01-01T00:00:00Z",
        ]
    return "\n".join(lines) + "\n"
