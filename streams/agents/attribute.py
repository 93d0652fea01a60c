"""``attribute_usage``: accepted usage -> the customer it is billed to.

Consumes ``usage.accepted``; sends attributed events to ``usage.attributed`` keyed
and partitioned by customer, and parks unclaimed ones on the compacted
``usage.unattributed`` topic (key: the event digest). When a new catalog maps a
parked subject, the parked events are attributed and their parking record is
tombstoned. Parked events of a partition are re-read from that topic after a
restart, so nothing parked is forgotten.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable
from datetime import datetime
from typing import Any

import faust
from faust.types import TP, EventT, StreamT

from connectors.kafka import topics
from connectors.kafka.catalog_feed import CatalogFeed
from connectors.kafka.partitioner import partition_for
from connectors.kafka.replay import read_partition
from streams.attribution import attribute
from streams.codec import UsageCodec
from streams.domain.catalog import Catalog
from streams.domain.dedup import event_digest
from streams.domain.usage import UsageEvent
from streams.records import ATTRIBUTED
from streams.settings import Settings

log = logging.getLogger("railyard.attribute")
MAX_ITEMS_PER_MESSAGE = 2000
"""About 200 KB a message: far below Kafka's 1 MiB default, whatever the batch size."""


class AttributeStage:
    def __init__(self, app: faust.App, settings: Settings, feed: CatalogFeed) -> None:
        self.settings = settings
        self.feed = feed
        self.codec = UsageCodec()
        self.source = app.topic(topics.topic_name(settings, topics.USAGE_ACCEPTED))
        self.attributed = app.topic(topics.topic_name(settings, topics.USAGE_ATTRIBUTED))
        self.parking_name = topics.topic_name(settings, topics.USAGE_UNATTRIBUTED)
        self.parking = app.topic(self.parking_name)
        self.partitions = settings.usage_partitions
        self.parked: dict[int, dict[str, dict[str, Any]]] = {}
        self.catalog_changed = asyncio.Event()
        self._targets: dict[str, int] = {}
        self._progress: dict[int, datetime] = {}

    async def parked_for(self, partition: int) -> dict[str, dict[str, Any]]:
        if partition not in self.parked:
            self.parked[partition] = await asyncio.to_thread(self._load_parked, partition)
            if self.parked[partition]:
                log.info("%d events parked on partition %d", len(self.parked[partition]), partition)
                self.catalog_changed.set()  # maybe today's catalog claims them
        return self.parked[partition]

    def _load_parked(self, partition: int) -> dict[str, dict[str, Any]]:
        parked: dict[str, dict[str, Any]] = {}
        for msg in read_partition(self.settings.kafka_bootstrap, self.parking_name, partition):
            key = (msg.key() or b"").decode()
            if msg.value() is None:
                parked.pop(key, None)
            else:
                parked[key] = self.codec.decode_records(msg.value())[0]
        return parked

    def forget_partitions(self, revoked: set[TP]) -> None:
        for tp in revoked:
            if tp.topic == self.source.get_topic_name():
                self.parked.pop(tp.partition, None)

    async def process(self, events: list[EventT]) -> None:
        catalog = self.feed.current
        assert catalog is not None, "the worker waits for a catalog before it starts"
        by_partition: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for event in events:
            records = self.codec.decode_records(event.message.value)
            by_partition[event.message.partition].extend(records)
        sends: list[Awaitable[Any]] = []
        items: list[dict[str, Any]] = []
        for partition, records in by_partition.items():
            parked = await self.parked_for(partition)
            result = attribute(records, catalog, partition)
            items.extend(result.attributed)
            for record in records:
                latest = self._progress.get(partition)
                if latest is None or record["time"] > latest:
                    self._progress[partition] = record["time"]
            for record in result.parked:
                key = _parking_key(record)
                parked[key] = record
                sends.append(
                    await self.parking.send(
                        key=key.encode(),
                        value=self.codec.encode_event(UsageEvent(**record)),
                        partition=partition,
                    )
                )
        sends.extend(await self._send_attributed(items, broadcast=True))
        await asyncio.gather(*sends)
        if self.feed.current is not catalog:  # changed mid-batch: look at the parked again
            self.catalog_changed.set()

    async def _send_attributed(
        self, items: list[dict[str, Any]], broadcast: bool = False
    ) -> list[Awaitable[Any]]:
        """One message per target partition, items in input order (never regrouped by customer).

        The window stage tracks each source partition's event-time progress, so the
        events of one source partition must reach it in the order they were accepted.
        With ``broadcast``, every target partition gets a message carrying the progress
        of the source partitions this worker reads, even when no event goes there.
        """
        by_target: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for item in items:
            by_target[self._target(item["customer"])].append(item)
        progress = [
            {"source_partition": p, "event_time": t} for p, t in sorted(self._progress.items())
        ]
        targets = range(self.partitions) if broadcast else sorted(by_target)
        sends = []
        for target in targets:
            batch = by_target.get(target, [])
            for start in range(0, max(len(batch), 1), MAX_ITEMS_PER_MESSAGE):
                chunk = batch[start : start + MAX_ITEMS_PER_MESSAGE]
                last = start + MAX_ITEMS_PER_MESSAGE >= len(batch)
                # progress rides on the last chunk: it must never run ahead of the items
                payload = ATTRIBUTED.encode({"items": chunk, "progress": progress if last else []})
                sends.append(await self.attributed.send(value=payload, partition=target))
        return sends

    def _target(self, customer: str) -> int:
        target = self._targets.get(customer)
        if target is None:
            target = self._targets[customer] = partition_for(customer.encode(), self.partitions)
        return target

    async def release_parked(self, catalog: Catalog) -> int:
        """Attribute parked events the catalog now claims; tombstone their parking records."""
        released = 0
        for partition, parked in list(self.parked.items()):
            result = attribute(list(parked.values()), catalog, partition)
            if not result.attributed:
                continue
            sends = await self._send_attributed(result.attributed)
            await asyncio.gather(*sends)  # attributed first: a crash here only re-attributes
            tombstones = []
            for item in result.attributed:
                key = _parking_key(item["event"])
                tombstones.append(
                    await self.parking.send(key=key.encode(), value=None, partition=partition)
                )
                parked.pop(key, None)
                released += 1
            await asyncio.gather(*tombstones)
        if released:
            log.info("attributed %d parked events under catalog %s", released, catalog.version)
        return released


def _parking_key(record: dict[str, Any]) -> str:
    return event_digest(record["source"], record["id"]).hex()


def register_attribute(app: faust.App, settings: Settings, feed: CatalogFeed) -> AttributeStage:
    stage = AttributeStage(app, settings, feed)
    loop_holder: dict[str, asyncio.AbstractEventLoop] = {}

    @app.agent(stage.source, name="attribute_usage")
    async def attribute_usage(stream: StreamT[bytes]) -> None:
        loop_holder["loop"] = asyncio.get_running_loop()
        async for events in stream.noack().noack_take(1000, 0.05):
            await stage.process(list(events))
            for event in events:
                await stream.ack(event)

    @app.timer(interval=1.0)
    async def release_parked_usage() -> None:
        if stage.catalog_changed.is_set() and stage.feed.current is not None:
            stage.catalog_changed.clear()
            await stage.release_parked(stage.feed.current)

    def on_catalog(catalog: Catalog) -> None:  # called from the feed's thread
        loop = loop_holder.get("loop")
        if loop is not None:
            loop.call_soon_threadsafe(stage.catalog_changed.set)

    feed.on_change = on_catalog

    async def on_revoked(sender: Any, revoked: set[TP], **kwargs: Any) -> None:
        stage.forget_partitions(revoked)

    async def on_assigned(sender: Any, assigned: set[TP], **kwargs: Any) -> None:
        for tp in assigned:  # parked events must be released even if no new usage comes
            if tp.topic == stage.source.get_topic_name():
                await stage.parked_for(tp.partition)

    app.on_partitions_revoked.connect(on_revoked)
    app.on_partitions_assigned.connect(on_assigned)
    return stage
