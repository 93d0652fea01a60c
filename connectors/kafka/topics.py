"""Every topic Railyard uses, declared once.

Names are constants; :func:`topic_specs` gives partition counts and configs so
``railyard topics create`` (and the stack start-up) create them explicitly
instead of relying on broker auto-creation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from streams.settings import Settings

USAGE = "usage"
"""Raw usage events from producers, keyed by subject."""
USAGE_DLQ = "usage.dlq"
"""Rejected usage with a machine-readable reason and the original bytes."""
USAGE_ACCEPTED = "usage.accepted"
"""Validated, de-duplicated usage; the sink lands it in the raw events table."""
USAGE_DEDUP_LOG = "usage.dedup-log"
"""The ingest agent's memory of event ids it has seen, one record per batch."""
CATALOG = "catalog"
"""Compacted: the billing catalog in force (key ``current``) and every applied version."""
USAGE_ATTRIBUTED = "usage.attributed"
"""Usage with its customer, keyed and partitioned by customer."""
USAGE_UNATTRIBUTED = "usage.unattributed"
"""Compacted, keyed by event: usage no customer claims yet; a tombstone once attributed."""
USAGE_WINDOWS = "usage.windows"
"""Absolute totals of event-time windows per customer x meter x dimensions."""
USAGE_LATE = "usage.late"
"""Usage later than the allowed lateness: billed as an adjustment, never dropped."""
BILLING_BOOK = "billing.book"
"""Compacted, never expires: the rate stage's state (each window's partial aggregate, late
usage, the watermark), one record per key, so a restart rebuilds it whatever the retention
of ``usage.windows`` and ``usage.late``."""

INVOICES = "invoices"
"""Every issued invoice and credit note, keyed by customer; the router fans it out."""
INVOICES_STATUS = "invoices.status"
"""Delivery outcomes from the rail connectors (delivered, retrying, failed)."""
INVOICES_DLQ = "invoices.dlq"
"""Invoices a rail refused for good, with the rail's error."""
BILLING_SPEND = "billing.spend"
"""Each customer's running spend in the open period (and credit balances), by revision."""
CREDIT_EVENTS = "credits.events"
"""Prepaid credit alerts: a grant crossed a threshold, or ran out."""
BILLING_COMMANDS = "billing.commands"
"""Operator requests to the rate stage (``railyard close-period``), one copy per partition."""
RAIL_TOPIC_PREFIX = "invoices."
"""``invoices.<rail>``: derived from the rail's name, never declared per rail."""


def rail_topic(rail: str) -> str:
    """The topic the router publishes ``rail``'s invoices to (before any topic prefix)."""
    return f"{RAIL_TOPIC_PREFIX}{rail}"


MONTH_MS = 35 * 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)


def topic_name(settings: Settings, base: str) -> str:
    return f"{settings.topic_prefix}{base}"


def topic_specs(settings: Settings) -> list[TopicSpec]:
    p = settings.usage_partitions
    retention = str(int(settings.max_event_age.total_seconds() * 1000))
    specs = [
        TopicSpec(USAGE, p),
        TopicSpec(USAGE_ACCEPTED, p),
        TopicSpec(USAGE_DLQ, 1, {"retention.ms": "-1", "max.message.bytes": str(6 * 1024 * 1024)}),
        # Same partition count as `usage`: partition i remembers what usage partition i saw.
        TopicSpec(USAGE_DEDUP_LOG, p, {"retention.ms": retention}),
        TopicSpec(CATALOG, 1, {"cleanup.policy": "compact", "retention.ms": "-1"}),
        TopicSpec(USAGE_ATTRIBUTED, p),
        TopicSpec(USAGE_UNATTRIBUTED, p, {"cleanup.policy": "compact", "retention.ms": "-1"}),
        TopicSpec(USAGE_WINDOWS, p),
        TopicSpec(USAGE_LATE, p, {"retention.ms": "-1"}),
        TopicSpec(BILLING_BOOK, p, {"cleanup.policy": "compact", "retention.ms": "-1"}),
        # Billing: issued documents are kept for good (they are the record of what was billed).
        TopicSpec(INVOICES, p, {"retention.ms": "-1"}),
        TopicSpec(BILLING_SPEND, p),
        TopicSpec(CREDIT_EVENTS, 1, {"retention.ms": "-1"}),
        TopicSpec(BILLING_COMMANDS, p),
        TopicSpec(INVOICES_STATUS, 1, {"retention.ms": "-1"}),
        TopicSpec(INVOICES_DLQ, 1, {"retention.ms": "-1"}),
    ]
    return [TopicSpec(topic_name(settings, s.name), s.partitions, s.config) for s in specs]


def rail_topic_specs(settings: Settings, rails: list[str] | set[str]) -> list[TopicSpec]:
    """``invoices.<rail>`` for each rail: one partition keeps a rail's invoices in order."""
    return [
        TopicSpec(topic_name(settings, rail_topic(r)), 1, {"retention.ms": "-1"})
        for r in sorted(rails)
    ]
