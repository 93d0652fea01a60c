"""``invoices.status`` read incrementally (each call returns what was published since the
last), and written one acknowledged step at a time.

What a rail process needs to know about earlier deliveries is on that topic already
(every delivery outcome carries the rail's ids in ``references``), so the poller and
the Adyen rail's payment references read it instead of keeping a store of their own.
One consumer, assigned every partition from its start: never a group member, never
committing.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)

from connectors.kafka import topics
from connectors.kafka.consumed import value_of
from streams.domain.errors import ConfigError
from streams.settings import Settings
from streams.wire.records import INVOICE_STATUS

log = logging.getLogger(__name__)


class StatusFeed:
    def __init__(self, settings: Settings, group: str = "railyard-status-feed") -> None:
        self.settings, self.group = settings, group
        self.topic = topics.topic_name(settings, topics.INVOICES_STATUS)
        self.consumer: Consumer | None = None
        self.partitions: list[int] = []
        self.offsets: dict[int, int] = {}

    def _open(self) -> Consumer:
        if self.consumer is None:
            consumer = Consumer(
                {
                    "bootstrap.servers": self.settings.kafka_bootstrap,
                    "group.id": self.group,  # assign() only: never joins or commits
                    "enable.auto.commit": False,
                }
            )
            meta = consumer.list_topics(self.topic, timeout=10).topics.get(self.topic)
            if meta is None or meta.error is not None:
                consumer.close()
                raise ConfigError(f"topic {self.topic} not found: run railyard topics create")
            self.partitions = sorted(meta.partitions)
            consumer.assign(
                [TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in self.partitions]
            )
            self.consumer = consumer
        return self.consumer

    def read_new(self, timeout: float = 30.0) -> list[dict[str, Any]]:
        """The ``invoice_status`` records published since the last call, up to the end now."""
        consumer = self._open()
        highs = {
            p: consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=10)[1]
            for p in self.partitions
        }
        pending = {p for p, high in highs.items() if self.offsets.get(p, 0) < high}
        records: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.topic}: not read to its end in {timeout:.0f} s")
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error() is not None:
                log.warning("%s: %s", self.topic, msg.error())
                continue
            records.append(INVOICE_STATUS.decode(value_of(msg)))
            partition, offset = msg.partition() or 0, (msg.offset() or 0) + 1
            self.offsets[partition] = offset
            if offset >= highs[partition]:
                pending.discard(partition)
        return records

    def close(self) -> None:
        if self.consumer is not None:
            self.consumer.close()
            self.consumer = None


class StatusPublisher:
    """Payment steps onto ``invoices.status`` for the notification receiver and the poller.

    Each step is acknowledged by the broker (idempotent producer, ``acks=all``) before the
    caller records it as done, so a crash in between means a retry, never a lost step.
    """

    def __init__(self, settings: Settings, who: str) -> None:
        self.who = who
        self.topic = topics.topic_name(settings, topics.INVOICES_STATUS)
        self.producer = Producer(
            {
                "bootstrap.servers": settings.kafka_bootstrap,
                "enable.idempotence": True,
                "acks": "all",
            }
        )

    def publish(self, invoice_id: str, record: dict[str, Any]) -> bool:
        """Whether the broker acknowledged the step within 30 s."""
        errors: list[KafkaError] = []

        def acked(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                errors.append(err)

        value = INVOICE_STATUS.encode(record)
        self.producer.produce(self.topic, value, invoice_id.encode(), on_delivery=acked)
        left = self.producer.flush(30)
        if left or errors:
            log.error("%s: status not acknowledged by the broker: %s", self.who, errors or left)
            return False
        return True

    def close(self) -> None:
        self.producer.flush(10)
