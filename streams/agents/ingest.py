"""``ingest_usage``: the first stream stage.

Consumes ``usage``, runs :func:`streams.agents.ingest_rules.screen` on each message, and sends
accepted events to ``usage.accepted``, rejections to ``usage.dlq`` and the ids it
accepted to ``usage.dedup-log``. With attribution on (the ``attribute`` stage), the
same pass attributes the accepted events and sends their meter contributions to
``usage.attributed`` (see :mod:`streams.agents.attribute`): each event is decoded
once for ingest, attribution and metering. Events are acknowledged (so their offsets
can be committed) only after every send of their batch is delivered: a crash at any
point replays the batch, which the position-aware dedup turns into the same output.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import faust
from faust.types import TP, EventT

from connectors.kafka import topics
from connectors.kafka.catalog_feed import CatalogFeed
from connectors.kafka.dedup_log import load_seen
from connectors.metrics import export_ingest_counts
from streams.agents.attribute import Attributor, register_attribute
from streams.agents.batching import batch_agent, by_partition, every
from streams.agents.ingest_rules import screen
from streams.domain.catalog import Catalog
from streams.domain.dedup import SeenEvents, pack_entries
from streams.domain.usage import UsageEvent
from streams.domain.validation import Limits
from streams.settings import Settings, Stage
from streams.wire.codec import UsageCodec, encode_dead_letter

log = logging.getLogger("railyard.ingest")
BATCH_MESSAGES = 100
"""Up to 50,000 events in producer batches of 500: about a second of work. Sends only
leave once the batch yields, so a bigger one would stall the sink and the window stage."""
BATCH_WITHIN_S = 0.05
DEDUP_ENTRIES_PER_RECORD = 30_000
"""24 bytes each: about 720 KB a record, under Kafka's 1 MiB default however big the batch."""
Clock = Callable[[], datetime]


class IngestStage:
    """State and counters of the ingest agent; one per worker process."""

    def __init__(self, app: faust.App, settings: Settings, feed: CatalogFeed, clock: Clock) -> None:
        self.settings = settings
        self.feed = feed
        self.clock = clock
        self.codec = UsageCodec.for_settings(settings.schema_registry_url)
        self.limits = Limits(
            max_event_bytes=settings.max_event_bytes,
            max_age=settings.max_event_age,
            max_skew=settings.max_clock_skew,
        )
        self.usage_topic = topics.topic_name(settings, topics.USAGE)
        self.source = app.topic(self.usage_topic)
        self.accepted = app.topic(topics.topic_name(settings, topics.USAGE_ACCEPTED))
        self.dlq = app.topic(topics.topic_name(settings, topics.USAGE_DLQ))
        self.dedup_log_name = topics.topic_name(settings, topics.USAGE_DEDUP_LOG)
        self.dedup_log = app.topic(self.dedup_log_name)
        self.seen: dict[int, SeenEvents] = {}
        self.counts: dict[str, int] = defaultdict(int)
        self.attributor: Attributor | None = None
        """Set when this worker also attributes (the ``attribute`` stage)."""
        self._last_report = time.monotonic()
        self._exported: dict[str, int] = {}

    async def seen_for(self, partition: int) -> SeenEvents:
        if partition not in self.seen:
            started = time.monotonic()
            self.seen[partition] = await asyncio.to_thread(
                load_seen,
                self.settings.kafka_bootstrap,
                self.dedup_log_name,
                partition,
                self.settings.dedup_memory.total_seconds(),
            )
            log.info(
                "recovered %d event ids for %s[%d] in %.2fs",
                len(self.seen[partition]),
                self.usage_topic,
                partition,
                time.monotonic() - started,
            )
        return self.seen[partition]

    def forget_partitions(self, revoked: set[TP]) -> None:
        for tp in revoked:
            if tp.topic == self.usage_topic:
                self.seen.pop(tp.partition, None)

    async def process(self, events: list[EventT[bytes]]) -> None:
        now = self.clock()
        pending: list[Awaitable[Any]] = []
        bodies: list[dict[str, Any]] = []
        catalog = self.feed.current
        assert catalog is not None, "the worker waits for a catalog before it starts"
        for partition, batch in by_partition(events).items():
            seen = await self.seen_for(partition)
            accepted, digests = await self._process_partition(
                partition, batch, seen, now, catalog, pending
            )
            if self.attributor is not None:
                body, parking = await self.attributor.attribute(
                    partition, accepted, digests, catalog
                )
                bodies.extend(body)
                pending.extend(parking)
        if self.attributor is not None:
            pending.extend(await self.attributor.send(bodies, broadcast=True))
            if self.feed.current is not catalog:  # changed mid-batch: look at the parked again
                self.attributor.catalog_changed.set()
        await asyncio.gather(*pending)
        export_ingest_counts(self.counts, self._exported)  # once the batch is delivered
        self._report()

    async def _process_partition(
        self,
        partition: int,
        batch: list[EventT[bytes]],
        seen: SeenEvents,
        now: datetime,
        catalog: Catalog,
        sends: list[Awaitable[Any]],
    ) -> tuple[list[UsageEvent], list[bytes]]:
        """Screen one partition's messages; returns the accepted events and their digests."""
        emitted: list[tuple[bytes, int]] = []
        accepted: list[UsageEvent] = []
        meters = catalog.meter_index
        counts = self.counts
        for event in batch:
            msg = event.message
            payload: bytes = msg.value or b""
            result = screen(
                payload,
                msg.offset,
                codec=self.codec,
                seen=seen,
                now=now,
                limits=self.limits,
                max_message_bytes=self.settings.max_message_bytes,
                meters=meters,
            )
            if result.forward_original:
                sends.append(
                    await self.accepted.send(key=msg.key, value=payload, partition=partition)
                )
            elif result.accepted:
                sends.append(
                    await self.accepted.send(
                        key=msg.key,
                        value=self.codec.encode_batch(result.accepted),
                        partition=partition,
                    )
                )
            for index, rejection, original in result.rejected:
                letter = encode_dead_letter(
                    rejection,
                    stage="ingest",
                    topic=msg.topic,
                    partition=partition,
                    offset=msg.offset,
                    index=index,
                    original=original,
                    rejected_at=now,
                )
                sends.append(await self.dlq.send(key=msg.key, value=letter))
                counts[f"rejected.{rejection.reason}"] += 1
            emitted.extend(result.emitted)
            accepted.extend(result.accepted)
            counts["accepted"] += len(result.accepted)
            counts["duplicates"] += result.duplicates
            counts["messages"] += 1
        for start in range(0, len(emitted), DEDUP_ENTRIES_PER_RECORD):
            chunk = emitted[start : start + DEDUP_ENTRIES_PER_RECORD]
            sends.append(await self.dedup_log.send(value=pack_entries(chunk), partition=partition))
        if emitted:
            seen.mark_arrival(max(pos for _, pos in emitted), now.timestamp())
        return accepted, [digest for digest, _ in emitted]

    def expire(self) -> None:
        cutoff = self.clock().timestamp() - self.settings.dedup_memory.total_seconds()
        for seen in self.seen.values():
            seen.forget_arrived_before(cutoff)

    def _report(self) -> None:
        if time.monotonic() - self._last_report >= 5:
            self._last_report = time.monotonic()
            log.info("ingest totals: %s", dict(sorted(self.counts.items())))


def register_ingest(
    app: faust.App,
    settings: Settings,
    feed: CatalogFeed,
    clock: Clock = lambda: datetime.now(UTC),
) -> IngestStage:
    stage = IngestStage(app, settings, feed, clock)
    if Stage.ATTRIBUTE in settings.stages:
        stage.attributor = Attributor(app, settings, feed)
        register_attribute(app, feed, stage.attributor)

    batch_agent(
        app,
        stage.source,
        "ingest_usage",
        stage.process,
        messages=BATCH_MESSAGES,
        within_s=BATCH_WITHIN_S,
        forget=stage.forget_partitions,
    )

    async def expire_seen_events() -> None:
        stage.expire()

    every(app, 3600.0, expire_seen_events)
    return stage
