"""Attribution: which customer each accepted event is billed to, under one catalog.

Pure: the catalog decides, at the event's own time (a key that moves between
customers bills each one for its own period). Events no customer claims are parked,
never dropped, and attributed when a later catalog maps their subject.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from streams.domain.catalog import Catalog


@dataclass(slots=True)
class Attribution:
    by_customer: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    """Customer -> attributed items (``customer``, ``catalog_version``, ``event`` record)."""
    parked: list[dict[str, Any]] = field(default_factory=list)
    """Event records whose subject no customer owned at the event's time."""


def attribute(records: Iterable[dict[str, Any]], catalog: Catalog) -> Attribution:
    out = Attribution()
    version = catalog.version
    customer_for = catalog.customer_for
    for record in records:
        customer = customer_for(record["subject"], record["time"])
        if customer is None:
            out.parked.append(record)
        else:
            out.by_customer[customer].append(
                {"customer": customer, "catalog_version": version, "event": record}
            )
    return out
