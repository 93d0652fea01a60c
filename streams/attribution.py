"""Attribution: which customer each accepted event is billed to, under one catalog.

Pure: the catalog decides, at the event's own time (a key that moves between
customers bills each one for its own period). Events no customer claims are parked,
never dropped, and attributed when a later catalog maps their subject.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from streams.domain.catalog import Catalog


@dataclass(slots=True)
class Attribution:
    attributed: list[dict[str, Any]] = field(default_factory=list)
    """Attributed items (``customer``, ``catalog_version``, ``source_partition``, ``event``),
    in input order: the window stage relies on each source partition staying in order."""
    parked: list[dict[str, Any]] = field(default_factory=list)
    """Event records whose subject no customer owned at the event's time."""


def attribute(
    records: Iterable[dict[str, Any]], catalog: Catalog, source_partition: int = 0
) -> Attribution:
    out = Attribution()
    version = catalog.version
    customer_for = catalog.customer_for
    for record in records:
        customer = customer_for(record["subject"], record["time"])
        if customer is None:
            out.parked.append(record)
        else:
            out.attributed.append(
                {
                    "customer": customer,
                    "catalog_version": version,
                    "source_partition": source_partition,
                    "event": record,
                }
            )
    return out
