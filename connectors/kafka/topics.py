"""Every topic Railyard uses, declared once, with how long Kafka keeps it and why.

Names are constants; :func:`topic_specs` gives partition counts and configs so
``railyard topics create`` (and the stack start-up) create them explicitly instead of
relying on broker auto-creation, and puts back any retention or cleanup policy that
drifted from them. Every topic states its ``cleanup.policy`` and retention; none relies
on the broker's defaults. The rule behind them: a stage rebuilds state only from a topic
that keeps it for good (compacted, or never expiring), or from one whose retention is
derived from what the rebuild needs (``usage.dedup-log``, ``usage.attributed``).
``docs/deploy.md`` has the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from streams.settings import RETENTION_MARGIN, Settings

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


FOREVER = "-1"
"""``retention.ms`` / ``retention.bytes`` of a topic whose records never expire."""
SEGMENT = timedelta(days=1)
"""``segment.ms`` of every expiring or compacted topic. Retention drops whole segments and
compaction never touches the open one: day-long segments keep both close to the policy
(with the broker's 7 days, a 7-day topic keeps up to 14, a compacted one a week of
revisions that every rebuild reads)."""


@dataclass(frozen=True)
class TopicSpec:
    """A topic as Railyard creates it and keeps it (``railyard topics create``).

    ``config`` always names ``cleanup.policy``, ``retention.ms`` and ``retention.bytes``:
    no topic relies on the broker's defaults (7 days on a stock broker, whatever an
    operator set on a shared one). ``why`` says in one line why that policy is right.
    """

    name: str
    partitions: int
    config: dict[str, str]
    why: str

    @property
    def cleanup_policy(self) -> str:
        return self.config["cleanup.policy"]

    @property
    def retention(self) -> timedelta | None:
        """How long records are kept; None when they never expire (or are compacted)."""
        if self.cleanup_policy != "delete" or self.config["retention.ms"] == FOREVER:
            return None
        return timedelta(milliseconds=int(self.config["retention.ms"]))


ARRIVAL_TIME = {"message.timestamp.type": "LogAppendTime"}
"""Records carry the broker's time of arrival: retention then counts from arrival, whatever
a producer stamped (a backfill stamped with event times would otherwise expire at once)."""


def _ms(value: timedelta) -> str:
    return str(value // timedelta(milliseconds=1))


def kept_for(retention: timedelta, **extra: str) -> dict[str, str]:
    """Delete policy: records expire ``retention`` after they were written."""
    return {
        "cleanup.policy": "delete",
        "retention.ms": _ms(retention),
        "retention.bytes": FOREVER,  # bounded by time only: a burst never evicts what a stage needs
        "segment.ms": _ms(min(SEGMENT, retention)),  # whole segments expire
        **extra,
    }


def kept_forever(**extra: str) -> dict[str, str]:
    """Delete policy with no retention: every record stays."""
    return {
        "cleanup.policy": "delete",
        "retention.ms": FOREVER,
        "retention.bytes": FOREVER,
        **extra,
    }


def compacted(**extra: str) -> dict[str, str]:
    """Compacted: the newest record of every key stays, for good."""
    return {
        "cleanup.policy": "compact",
        "retention.ms": FOREVER,
        "retention.bytes": FOREVER,
        "segment.ms": _ms(SEGMENT),
        **extra,
    }


def topic_name(settings: Settings, base: str) -> str:
    return f"{settings.topic_prefix}{base}"


def dedup_retention(settings: Settings) -> timedelta:
    """How long ``usage.dedup-log`` keeps what ingest accepted: an event stays acceptable
    (so a duplicate of it must be recognised) until ``max_event_age`` after its time, and
    its time may be up to ``max_clock_skew`` after it arrived."""
    return settings.max_event_age + settings.max_clock_skew + RETENTION_MARGIN


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Every topic but the rails' (see :func:`rail_topic_specs`), with its policy and why."""
    p = settings.usage_partitions
    stream = kept_for(settings.stream_retention)
    # Never shorter than the window stage's rebuild needs, even on unvalidated settings.
    attributed = kept_for(max(settings.stream_retention, settings.min_stream_retention))
    dedup = dedup_retention(settings)
    # Revisions stay uncompacted as long as stream topics keep records, so the sink (and a
    # consumer as far behind as that) sees every catalog application, park and release.
    every_revision = {
        "min.compaction.lag.ms": _ms(settings.stream_retention),
        "delete.retention.ms": _ms(settings.stream_retention),
    }
    specs = [
        TopicSpec(
            USAGE,
            p,
            kept_for(settings.stream_retention, **ARRIVAL_TIME),
            "producers' input, re-read after an outage or to reprocess; counted from"
            " arrival, not the producer's stamp",
        ),
        TopicSpec(
            USAGE_ACCEPTED, p, stream, "landed by the sink (usage_events); nothing rebuilds from it"
        ),
        TopicSpec(
            USAGE_DLQ,
            1,
            kept_for(dedup, **{"max.message.bytes": str(6 << 20)}),
            "dead letters with their bytes, landed in dead_letters; kept while an"
            " event could still be re-driven",
        ),
        # Same partition count as `usage`: partition i remembers what usage partition i saw.
        TopicSpec(
            USAGE_DEDUP_LOG,
            p,
            kept_for(dedup),
            "ingest rebuilds its de-dup index from it: max event age + clock skew + 1 day",
        ),
        TopicSpec(
            CATALOG,
            1,
            compacted(**every_revision),
            "every catalog version and the one in force; workers read it from the start",
        ),
        TopicSpec(
            USAGE_ATTRIBUTED,
            p,
            attributed,
            "the window stage rebuilds from it: window + lateness + replay horizon + skew + 1 day",
        ),
        TopicSpec(
            USAGE_UNATTRIBUTED,
            p,
            compacted(**every_revision),
            "parked usage waits for its customer however long; rebuilt from it",
        ),
        TopicSpec(
            USAGE_WINDOWS,
            p,
            stream,
            "landed by the sink (usage_windows); the rate stage's state is billing.book",
        ),
        TopicSpec(
            USAGE_LATE,
            p,
            stream,
            "landed by the sink (usage_late); the rate stage's state is billing.book",
        ),
        TopicSpec(
            BILLING_BOOK, p, compacted(), "the rate stage's state, rebuilt from it on every restart"
        ),
        # Never compacted: keyed by customer, compaction would keep only the last invoice.
        TopicSpec(
            INVOICES,
            p,
            kept_forever(),
            "the record of what was billed; the rate stage reads back what it issued",
        ),
        TopicSpec(
            BILLING_SPEND,
            p,
            stream,
            "running figures landed by the sink; sent again after a restart",
        ),
        TopicSpec(
            CREDIT_EVENTS,
            1,
            kept_forever(),
            "what customers were told about their credits; a few records per grant",
        ),
        TopicSpec(
            BILLING_COMMANDS,
            p,
            stream,
            "close requests act once consumed; what they closed is in invoices",
        ),
        TopicSpec(
            INVOICES_STATUS,
            1,
            kept_forever(),
            "every delivery outcome: the audit trail of what reached each rail",
        ),
        TopicSpec(
            INVOICES_DLQ,
            1,
            kept_forever(),
            "invoices a rail refused for good: each waits for a person",
        ),
    ]
    return [TopicSpec(topic_name(settings, s.name), s.partitions, s.config, s.why) for s in specs]


def rail_topic_specs(settings: Settings, rails: list[str] | set[str]) -> list[TopicSpec]:
    """``invoices.<rail>`` for each rail: one partition keeps a rail's invoices in order."""
    return [
        TopicSpec(
            topic_name(settings, rail_topic(r)),
            1,
            kept_forever(),
            "the rail's delivery queue: an invoice waits out any outage of its rail",
        )
        for r in sorted(rails)
    ]
