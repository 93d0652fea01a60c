"""Rebuilds a partition's :class:`SeenEvents` from the ``usage.dedup-log`` topic.

Partition *p* of the log holds what partition *p* of ``usage`` accepted, one record
per processed batch, so a worker that is assigned *p* (after a restart or a
rebalance) reads exactly that partition from the beginning before it screens
anything. The topic's time retention is the de-duplication horizon.
"""

from __future__ import annotations

import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from streams.domain.dedup import SeenEvents, unpack_entries


def load_seen(bootstrap: str, topic: str, partition: int, retention_s: float) -> SeenEvents:
    seen = SeenEvents()
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "railyard-dedup-recovery",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
        }
    )
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        if high <= low:
            return seen
        consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
        while True:
            msgs = consumer.consume(num_messages=1000, timeout=1.0)
            done = False
            for msg in msgs:
                if msg.error():
                    if msg.error().code() == -191:  # _PARTITION_EOF
                        done = True
                        continue
                    raise RuntimeError(f"dedup log read failed: {msg.error()}")
                entries = unpack_entries(msg.value() or b"")
                seen.remember(entries, msg.timestamp()[1] / 1000.0)
                if msg.offset() >= high - 1:
                    done = True
            if done:
                break
    finally:
        consumer.close()
    seen.forget_arrived_before(time.time() - retention_s)
    return seen
