"""Attribution, run inside ``ingest_usage``: accepted usage -> the customer it is billed to.

The ingest agent has just decoded and accepted each event, so it attributes it in the
same pass (no second decode of ``usage.accepted``): the events' meter contributions go
to ``usage.attributed`` in columns (avro/attributed_usage.v2.avsc), partitioned by
customer, and events no customer claims are parked on the compacted
``usage.unattributed`` topic (key: the event digest). When a new catalog maps a
parked subject, the parked events are attributed and their parking record is
tombstoned. Parked events of a partition are re-read from that topic after a restart
or rebalance, so nothing parked is forgotten.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from datetime import datetime
from typing import Any

import faust
from faust.types import TP

from connectors.kafka import topics
from connectors.kafka.catalog_feed import CatalogFeed
from connectors.kafka.partitioner import partition_for
from connectors.kafka.replay import read_partition
from connectors.metrics import EVENTS_PARKED
from streams.agents.batching import every, on_partitions
from streams.domain.attribution import MICROSECOND, Columns, route
from streams.domain.catalog import Catalog
from streams.domain.usage import UsageEvent
from streams.domain.watermarks import EPOCH
from streams.settings import Settings
from streams.wire.codec import UsageCodec
from streams.wire.contributions import ContributionsWriter

log = logging.getLogger("railyard.attribute")
MAX_EVENTS_PER_MESSAGE = 2000
"""About 200 KB a message: far below Kafka's 1 MiB default, whatever the batch size."""


class Attributor:
    """Parked events and source progress of the usage partitions this worker ingests."""

    def __init__(self, app: faust.App, settings: Settings, feed: CatalogFeed) -> None:
        self.settings = settings
        self.feed = feed
        self.codec = UsageCodec()
        self.writer = ContributionsWriter()
        self.usage_topic = topics.topic_name(settings, topics.USAGE)
        self.attributed = app.topic(topics.topic_name(settings, topics.USAGE_ATTRIBUTED))
        self.parking_name = topics.topic_name(settings, topics.USAGE_UNATTRIBUTED)
        self.parking = app.topic(self.parking_name)
        self.partitions = settings.usage_partitions
        self.parked: dict[int, dict[str, dict[str, Any]]] = {}
        self._loading: dict[int, asyncio.Future[dict[str, dict[str, Any]]]] = {}
        self.catalog_changed = asyncio.Event()
        """Look at the parked events again (new ones loaded, or the catalog moved mid-batch)."""
        self.checked_version = ""
        """The catalog version parked events were last checked against."""
        self._targets: dict[str, int] = {}
        self._progress: dict[int, datetime] = {}

    async def parked_for(self, partition: int) -> dict[str, dict[str, Any]]:
        """The partition's parked events, loaded once however many callers ask at a time.

        The assignment handler and the first batch both ask; two loads would leave two
        dicts, and events parked into the first would be forgotten when the second landed.
        """
        if partition not in self.parked:
            loading = self._loading.get(partition)
            if loading is None:
                loading = self._loading[partition] = asyncio.ensure_future(
                    asyncio.to_thread(self._load_parked, partition)
                )
            loaded = await loading
            if partition not in self.parked:
                self.parked[partition] = loaded
                self._loading.pop(partition, None)
                if loaded:
                    log.info("%d events parked on partition %d", len(loaded), partition)
                    self.catalog_changed.set()  # maybe today's catalog claims them
        return self.parked[partition]

    def _load_parked(self, partition: int) -> dict[str, dict[str, Any]]:
        parked: dict[str, dict[str, Any]] = {}
        for msg in read_partition(self.settings.kafka_bootstrap, self.parking_name, partition):
            key = (msg.key() or b"").decode()
            value = msg.value()
            if value is None:
                parked.pop(key, None)
            else:
                parked[key] = self.codec.decode_records(value)[0]
        return parked

    def forget_partitions(self, revoked: set[TP]) -> None:
        for tp in revoked:
            if tp.topic == self.usage_topic:
                self.parked.pop(tp.partition, None)
                self._loading.pop(tp.partition, None)

    async def attribute(
        self,
        partition: int,
        events: Sequence[UsageEvent],
        digests: Sequence[bytes],
        catalog: Catalog,
    ) -> tuple[list[dict[str, Any]], list[Awaitable[Any]]]:
        """Attribute one usage partition's accepted events; park the unclaimed ones.

        Returns the bodies to send (see :meth:`send`) and the parking sends.
        """
        parked = await self.parked_for(partition)
        if events:
            latest = max(e.time for e in events)
            if partition not in self._progress or latest > self._progress[partition]:
                self._progress[partition] = latest
        routed = route(events, digests, catalog, self._target)
        sends: list[Awaitable[Any]] = []
        EVENTS_PARKED.inc(len(routed.parked))
        for i in routed.parked:
            key = digests[i].hex()
            parked[key] = events[i]._asdict()
            value = self.codec.encode_event(events[i])
            sends.append(
                await self.parking.send(key=key.encode(), value=value, partition=partition)
            )
        return self._bodies(routed.by_target, catalog.version, partition), sends

    @staticmethod
    def _bodies(
        by_target: dict[int, Columns], version: str, partition: int
    ) -> list[dict[str, Any]]:
        out = []
        for target, columns in by_target.items():
            for body in columns.bodies(version, partition, MAX_EVENTS_PER_MESSAGE):
                body["target"] = target
                out.append(body)
        return out

    async def send(self, bodies: list[dict[str, Any]], broadcast: bool) -> list[Awaitable[Any]]:
        """One message per body, in order; each target's last one carries the progress.

        The window stage tracks each source partition's event-time progress, so the
        events of one source partition must reach it in the order they were accepted,
        and progress must never run ahead of the events. With ``broadcast``, every
        target partition gets the progress of the source partitions this worker reads,
        even when no event goes there (an empty body).
        """
        progress = [
            {"source_partition": p, "event_time": (t - EPOCH) // MICROSECOND}
            for p, t in sorted(self._progress.items())
        ]
        last: dict[int, dict[str, Any]] = {}
        for body in bodies:
            body["progress"] = []
            last[body["target"]] = body
        if broadcast:
            version = self.feed.current.version if self.feed.current else ""
            for target in range(self.partitions):
                if target not in last:
                    body = Columns().body(version, min(self._progress, default=0))
                    body["target"] = target
                    bodies.append(body)
                    last[target] = body
        for body in last.values():
            body["progress"] = progress
        sends = []
        for body in bodies:
            target = body.pop("target")
            payload = self.writer.encode(body)
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
            keys = list(parked)
            routed = route(
                [UsageEvent(**parked[k]) for k in keys],
                [bytes.fromhex(k) for k in keys],
                catalog,
                self._target,
            )
            claimed = set(range(len(keys))) - set(routed.parked)
            if not claimed:
                continue
            bodies = self._bodies(routed.by_target, catalog.version, partition)
            await asyncio.gather(*await self.send(bodies, broadcast=False))
            tombstones = []  # attributed first: a crash here only re-attributes
            for i in sorted(claimed):
                tombstones.append(
                    await self.parking.send(key=keys[i].encode(), value=None, partition=partition)
                )
                parked.pop(keys[i], None)
                released += 1
            await asyncio.gather(*tombstones)
        if released:
            log.info("attributed %d parked events under catalog %s", released, catalog.version)
        return released


def register_attribute(app: faust.App, feed: CatalogFeed, attributor: Attributor) -> None:
    """The timer that releases parked usage on a catalog change, and the parking recovery."""

    async def release_parked_usage() -> None:
        current = feed.current
        if current is None:
            return
        if attributor.catalog_changed.is_set() or current.version != attributor.checked_version:
            attributor.catalog_changed.clear()
            attributor.checked_version = current.version
            await attributor.release_parked(current)

    async def forget_revoked(revoked: set[TP]) -> None:
        attributor.forget_partitions(revoked)

    async def load_assigned(assigned: set[TP]) -> None:
        for tp in assigned:  # parked events must be released even if no new usage comes
            if tp.topic == attributor.usage_topic:
                await attributor.parked_for(tp.partition)

    every(app, 1.0, release_parked_usage)
    on_partitions(app.on_partitions_revoked, forget_revoked)
    on_partitions(app.on_partitions_assigned, load_assigned)
