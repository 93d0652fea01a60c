"""A catalog (YAML) that claims every customer of a synthetic workload.

For benchmarks and tests that generate their own customers: the example catalog's
meters, and one customer with all its subjects per generated profile.
"""

from __future__ import annotations

from collections.abc import Iterable

from .model import CustomerProfile

_CARD_RAILS = ("stripe", "adyen", "paypal")
_ERP_RAILS = ("netsuite", "sap", "salesforce")


def catalog_yaml(meters_yaml: str, customers: Iterable[CustomerProfile]) -> str:
    """``meters_yaml`` is a ``meters:`` section; customers are claimed from 2020 on."""
    lines = [meters_yaml.rstrip(), "", "customers:"]
    profiles = list(customers)
    for i, c in enumerate(profiles):
        rails = _CARD_RAILS if c.segment == "self_service" else _ERP_RAILS
        lines += [
            f"  - key: {c.name}",
            "    billing:",
            f"      currency: {c.currency}",
            f"      rail: {rails[i % len(rails)]}",
            f"      segment: {c.segment}",
            f"      region: {c.region}",
        ]
    lines += ["", "subjects:"]
    for c in profiles:
        lines += [
            f"  - customer: {c.name}",
            "    effective_from: 2020-01-01T00:00:00Z",
            f"    subjects: [{', '.join(c.subjects)}]",
        ]
    return "\n".join(lines) + "\n"
