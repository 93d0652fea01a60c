"""Reading one partition from its start: how stages rebuild state from Kafka alone.

Stages keep no local store: after a restart or a rebalance they re-read what they
need (the dedup log, parked events, their own input up to where they resume) and
derive their state from it, so state and committed offsets cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterator

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

from connectors.kafka.consumed import position_of


def read_partition(
    bootstrap: str, topic: str, partition: int, until: int | None = None, start: int = 0
) -> Iterator[Message]:
    """Every record of ``topic[partition]`` from ``start`` (default: the first retained one)
    with offset < ``until`` (default: the end now). RuntimeError when ``start`` is older
    than the first retained record: what a caller needed has expired."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "railyard-replay",  # assign() only: never joins or commits
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        end = high if until is None else min(until, high)
        if start and start < low:
            raise RuntimeError(
                f"{topic}[{partition}] starts at offset {low}, after {start}: records expired"
            )
        if end <= max(low, start):
            return
        first = start if start else OFFSET_BEGINNING
        consumer.assign([TopicPartition(topic, partition, first)])
        while True:
            for msg in consumer.consume(num_messages=2000, timeout=1.0):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        return
                    raise RuntimeError(f"reading {topic}[{partition}] failed: {err}")
                offset = position_of(msg).offset
                if offset >= end:
                    return
                yield msg
                if offset >= end - 1:
                    return
    finally:
        consumer.close()
