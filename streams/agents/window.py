"""``window_usage``: attributed usage -> event-time window totals per customer x meter x dims.

Consumes ``usage.attributed`` (partitioned by customer). Each input partition has its
own :class:`WindowAggregator` and watermark: the event-time progress of the slowest
upstream ``usage`` partition interleaved into it, and the epoch until every one of them
has reported (:class:`~streams.domain.watermarks.SourceWatermarks`).
Every message is folded in with the watermark as of that message, so the result
does not depend on how messages were batched: after a crash, the state of open
windows is rebuilt by re-reading the partition up to where the worker resumes,
and re-processing the uncommitted tail sends the very same totals again.

Outputs are absolute totals (``usage.windows``; the newest revision wins in
ClickHouse) and usage later than the allowed lateness (``usage.late``, billed as an
adjustment in the next open period).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from datetime import datetime, timedelta
from typing import Any

import faust
from faust.types import TP, EventT

from connectors.kafka import topics
from connectors.kafka.catalog_feed import CatalogFeed
from connectors.kafka.consumed import value_of
from connectors.kafka.replay import read_partition
from connectors.metrics import StageProgress
from streams.agents.batching import batch_agent, by_partition, event_value
from streams.agents.runtime import process_clock
from streams.domain.accumulators import quantity
from streams.domain.catalog import Catalog
from streams.domain.dedup import event_digest
from streams.domain.metering import Contribution, contributions
from streams.domain.meters import Aggregation
from streams.domain.partials import Partial, partial_of
from streams.domain.usage import UsageEvent
from streams.domain.watermarks import SourceWatermarks
from streams.domain.window_replay import PartitionWindows
from streams.domain.windows import LateUsage, WindowKey, WindowSize, WindowState, WindowUpdate
from streams.settings import Settings
from streams.wire.contributions import contribution_pairs, read_contributions
from streams.wire.records import ATTRIBUTED_V1, LATE, WINDOWS

log = logging.getLogger("railyard.window")


def message_contributions(
    payload: bytes, catalog: Catalog, progress: SourceWatermarks
) -> list[tuple[str, Contribution]]:
    """The (customer, contribution) pairs of one attributed message; records its progress."""
    if payload.startswith(ATTRIBUTED_V1.header):
        return _v1_contributions(payload, catalog, progress)
    return contribution_pairs(read_contributions(payload), progress)


def _v1_contributions(
    payload: bytes, catalog: Catalog, progress: SourceWatermarks
) -> list[tuple[str, Contribution]]:
    """Version 1 (full events, one record each): computes the contributions here."""
    by_type = catalog.meter_index.by_type
    out: list[tuple[str, Contribution]] = []
    message = ATTRIBUTED_V1.decode(payload)
    for item in message["items"]:
        record = item["event"]
        meters = by_type.get(record["type"])
        progress.observe(item["source_partition"], record["time"])
        if not meters:
            continue
        event = UsageEvent(**record)
        digest = event_digest(event.source, event.id)
        customer = item["customer"]
        out.extend((customer, c) for c in contributions(event, meters, digest))
    for mark in message["progress"]:
        progress.observe(mark["source_partition"], mark["event_time"])
    return out


BATCH_MESSAGES = 50
"""Up to 100,000 contributions (a full message holds 2,000): a fraction of a second of
work, so a batch never holds the event loop long."""
BATCH_WITHIN_S = 0.05

RECORDS_PER_MESSAGE = 2000
"""Window updates or late items per message: a few hundred KB, under Kafka's 1 MiB."""


def chunked(rows: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [rows[i : i + size] for i in range(0, len(rows), size)]


class WindowStage:
    def __init__(self, app: faust.App, settings: Settings, feed: CatalogFeed) -> None:
        self.settings = settings
        self.feed = feed
        self.size = WindowSize(settings.window_size)
        self.source_name = topics.topic_name(settings, topics.USAGE_ATTRIBUTED)
        self.source = app.topic(self.source_name)
        self.windows_out = app.topic(topics.topic_name(settings, topics.USAGE_WINDOWS))
        self.late_out = app.topic(topics.topic_name(settings, topics.USAGE_LATE))
        self.partitions: dict[int, PartitionWindows[Catalog]] = {}
        self.announced: dict[int, datetime] = {}
        self.progress = StageProgress("window", process_clock(settings.clock_origin))
        """The watermark last sent per partition: a batch goes out when it advances."""

    async def partition_state(
        self, partition: int, resume_at: int, catalog: Catalog
    ) -> PartitionWindows[Catalog]:
        if partition not in self.partitions:
            self.partitions[partition] = await asyncio.to_thread(
                self._rebuild, partition, resume_at, catalog
            )
        return self.partitions[partition]

    def _rebuild(
        self, partition: int, resume_at: int, catalog: Catalog
    ) -> PartitionWindows[Catalog]:
        state = PartitionWindows(
            self.size,
            self.settings.allowed_lateness,
            self.settings.usage_partitions,
            message_contributions,
        )
        committed = read_partition(
            self.settings.kafka_bootstrap, self.source_name, partition, resume_at
        )
        rebuilt = state.rebuild((value_of(msg) for msg in committed), catalog)
        log.info(
            "rebuilt %d open windows of %s[%d] from %d contributions before offset %d",
            rebuilt.windows,
            self.source_name,
            partition,
            rebuilt.contributions,
            resume_at,
        )
        return state

    def forget_partitions(self, revoked: set[TP]) -> None:
        for tp in revoked:
            if tp.topic == self.source_name:
                self.partitions.pop(tp.partition, None)
                self.announced.pop(tp.partition, None)
                self.progress.forget(tp.partition)

    async def process(self, events: list[EventT[bytes]]) -> None:
        catalog = self.feed.current
        assert catalog is not None
        meters = {m.key: m for m in catalog.meters}
        sends: list[Awaitable[Any]] = []
        for partition, batch in by_partition(events).items():
            state = await self.partition_state(partition, batch[0].message.offset, catalog)
            updates: dict[WindowKey, WindowUpdate] = {}
            late: list[LateUsage] = []
            for event in batch:
                for out in state.fold(event_value(event), catalog):
                    if isinstance(out, WindowUpdate):
                        updates[out.key] = out  # absolute totals: the last one says it all
                    else:
                        late.append(out)
            aggregator, span = state.aggregator, self.size.duration
            rows = [_update(u, aggregator.state(u.key), meters, span) for u in updates.values()]
            chunks = chunked(rows, RECORDS_PER_MESSAGE)
            if not chunks and self.announced.get(partition) != state.watermark:
                chunks = [[]]  # event time moved on: say so, downstream closes periods by it
            for chunk in chunks:
                payload = WINDOWS.encode({"updates": chunk, "watermark": state.watermark})
                sends.append(await self.windows_out.send(value=payload, partition=partition))
            self.announced[partition] = state.watermark
            self.progress.advance(partition, state.watermark)
            for chunk in chunked([_late(item, meters) for item in late], RECORDS_PER_MESSAGE):
                payload = LATE.encode({"items": chunk})
                sends.append(await self.late_out.send(value=payload, partition=partition))
            state.evict()
        await asyncio.gather(*sends)


def _update(
    u: WindowUpdate, state: WindowState | None, meters: dict[str, Any], length: timedelta
) -> dict[str, Any]:
    """The update's wire record, with the window's partial state as it is after the batch
    (the newest update of each window in a batch is the one sent)."""
    meter = meters.get(u.key.meter)
    row = {
        "customer": u.key.customer,
        "meter": u.key.meter,
        "aggregation": str(state.aggregation if state else meter.aggregation if meter else ""),
        "group_by": list(meter.group_by) if meter else [],
        "group": list(u.key.group),
        "window_start": u.key.start,
        "window_end": u.key.start + length,
        "value": u.value,
        "revision": u.revision,
        "is_correction": u.is_correction,
    }
    if state is not None:
        row.update(partial_fields(partial_of(state.aggregation, state.accumulator, u.revision)))
    return row


def partial_fields(p: Partial) -> dict[str, Any]:
    """The version-2 fields that carry a window's :class:`Partial` (see window_update.v2)."""
    exact_sum = p.aggregation in (Aggregation.SUM, Aggregation.AVG)
    return {
        "sum": quantity(p.total) if exact_sum else None,
        "distinct": sorted(p.distinct),
        "latest_time": p.latest.time if p.latest else None,
        "latest_digest": p.latest.digest if p.latest else None,
    }


def _late(item: LateUsage, meters: dict[str, Any]) -> dict[str, Any]:
    c = item.contribution
    meter = meters.get(item.key.meter)
    return {
        "customer": item.key.customer,
        "meter": item.key.meter,
        "aggregation": str(c.aggregation),
        "group_by": list(meter.group_by) if meter else [],
        "group": list(item.key.group),
        "window_start": item.key.start,
        "event_time": c.time,
        "value": str(c.value),
        "digest": c.digest,
        "watermark": item.watermark,
        "reason": str(item.reason),
    }


def register_window(app: faust.App, settings: Settings, feed: CatalogFeed) -> WindowStage:
    stage = WindowStage(app, settings, feed)
    batch_agent(
        app,
        stage.source,
        "window_usage",
        stage.process,
        messages=BATCH_MESSAGES,
        within_s=BATCH_WITHIN_S,
        forget=stage.forget_partitions,
    )
    return stage
