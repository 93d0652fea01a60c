"""Every catalog version ever applied, by its version, from the ``catalog`` topic.

``railyard catalog apply`` writes each catalog under ``version:<hash>`` as well as
``current``; compaction keeps one record per key, so every version stays. A reader
that must describe an invoice exactly as it was rated (the outbox's e-invoice
parties) asks for the invoice's ``catalog_version`` here rather than for the
catalog in force, which may have changed since.
"""

from __future__ import annotations

import threading
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from connectors.kafka import topics
from streams.domain.catalog import Catalog
from streams.settings import Settings

VERSION_PREFIX = b"version:"
READ_TIMEOUT_S = 30.0
"""How long one catch-up may take before the caller is told to retry later."""
POLL_TIMEOUT_S = 0.5


class CatalogUnavailable(RuntimeError):
    """The topic could not be read to its end in time."""


class CatalogVersions:
    """Catalogs by version, read from the topic on demand and kept (they never change)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topic = topics.topic_name(settings, topics.CATALOG)
        self._documents: dict[str, bytes] = {}
        self._decoded: dict[str, Catalog] = {}
        self._next = OFFSET_BEGINNING
        self._lock = threading.Lock()

    def get(self, version: str) -> Catalog | None:
        """The catalog applied as ``version``; None when the topic holds no such version."""
        with self._lock:
            if version not in self._documents:
                self._catch_up()
            document = self._documents.get(version)
            if document is None:
                return None
            if version not in self._decoded:
                self._decoded[version] = Catalog.from_json(document)
            return self._decoded[version]

    def _catch_up(self) -> None:
        consumer = Consumer(
            {
                "bootstrap.servers": self.settings.kafka_bootstrap,
                "group.id": "railyard-catalog-versions",  # never commits
                "enable.auto.commit": False,
                "enable.partition.eof": True,
            }
        )
        deadline = time.monotonic() + READ_TIMEOUT_S
        try:
            consumer.assign([TopicPartition(self.topic, 0, self._next)])
            while True:
                if time.monotonic() > deadline:
                    raise CatalogUnavailable(f"could not read {self.topic} to its end")
                msg = consumer.poll(POLL_TIMEOUT_S)
                if msg is None:
                    continue
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        return
                    continue
                offset = msg.offset()
                if offset is not None:
                    self._next = offset + 1
                key, value = msg.key() or b"", msg.value()
                if key.startswith(VERSION_PREFIX) and value:
                    self._documents[key[len(VERSION_PREFIX) :].decode()] = value
        finally:
            consumer.close()
