"""The billing catalog on Kafka: ``railyard catalog apply`` publishes, workers follow.

The compacted ``catalog`` topic holds the catalog in force under the key ``current``
and every applied version under ``version:<hash>`` (compaction keeps one record per
key, so the history stays). Each worker process follows the topic from the start in
a background thread: a new worker rebuilds the catalog from Kafka alone, and an
``apply`` reaches running workers without a restart.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from connectors.kafka import topics
from connectors.kafka.client_logs import quiet_client_config
from streams.domain.catalog import Catalog
from streams.domain.errors import ConfigError
from streams.settings import Settings

log = logging.getLogger("railyard.catalog")
CURRENT_KEY = b"current"
POLL_TIMEOUT_S = 0.5
"""How long one poll waits for a record before the feed looks at :meth:`CatalogFeed.stop`
again. A record is returned as soon as it arrives, so this never delays a catalog
change; it only bounds how long a stopped feed's thread keeps running, against two
wake-ups a second while the topic is idle."""


def publish_catalog(settings: Settings, catalog: Catalog) -> str:
    """Make ``catalog`` the one in force; returns its version."""
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "enable.idempotence": True})
    topic = topics.topic_name(settings, topics.CATALOG)
    document = catalog.to_json().encode()
    producer.produce(topic, document, f"version:{catalog.version}".encode())
    producer.produce(topic, document, CURRENT_KEY)
    if producer.flush(30):
        raise ConfigError(f"could not publish the catalog to {topic}")
    return catalog.version


class CatalogFeed:
    """The catalog in force in this process, kept current from the ``catalog`` topic."""

    def __init__(
        self, settings: Settings, on_change: Callable[[Catalog], None] | None = None
    ) -> None:
        self.settings = settings
        self.topic = topics.topic_name(settings, topics.CATALOG)
        self.on_change = on_change
        self._current: Catalog | None = None
        self._caught_up = threading.Event()
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="catalog-feed", daemon=True)

    @property
    def current(self) -> Catalog | None:
        return self._current

    def start(self) -> CatalogFeed:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def wait(self, timeout: float | None = None) -> Catalog:
        """Block until the topic has been read to its end and a catalog is in force."""
        with self._changed:
            ok = self._changed.wait_for(
                lambda: self._caught_up.is_set() and self._current is not None, timeout
            )
        if not ok or self._current is None:
            raise ConfigError(
                f"no catalog on {self.topic}: publish one with `railyard catalog apply FILE`"
            )
        return self._current

    def _run(self) -> None:
        consumer = Consumer(
            {
                **quiet_client_config(),
                "bootstrap.servers": self.settings.kafka_bootstrap,
                "group.id": "railyard-catalog-feed",  # never commits: reads from the start
                "enable.auto.commit": False,
                "enable.partition.eof": True,
            }
        )
        consumer.assign([TopicPartition(self.topic, 0, OFFSET_BEGINNING)])
        try:
            while not self._stop.is_set():
                msg = consumer.poll(POLL_TIMEOUT_S)
                if msg is None:
                    continue
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:  # caught up
                        with self._changed:
                            self._caught_up.set()
                            self._changed.notify_all()
                    continue
                value = msg.value()
                if msg.key() == CURRENT_KEY and value:
                    self._apply(Catalog.from_json(value))
        finally:
            consumer.close()

    def _apply(self, catalog: Catalog) -> None:
        if self._current is not None and self._current.version == catalog.version:
            return
        with self._changed:
            self._current = catalog
            self._changed.notify_all()
        log.info("catalog %s in force", catalog.version)
        if self.on_change is not None and self._caught_up.is_set():
            self.on_change(catalog)
