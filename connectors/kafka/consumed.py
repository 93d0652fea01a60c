"""What a consumed record always has, though confluent-kafka types it as optional.

``Message`` serves consumed records, delivery reports and errors alike, so each of its
accessors may return None. A record a consumer returned without an error always has a
topic, a partition and an offset; its value is missing only for a tombstone, which
most topics never carry.
"""

from __future__ import annotations

from typing import NamedTuple

from confluent_kafka import Message


class Position(NamedTuple):
    topic: str
    partition: int
    offset: int


def position_of(msg: Message) -> Position:
    """Where a consumed record sits; ValueError for a message that is not one (an error)."""
    topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
    if topic is None or partition is None or offset is None:
        raise ValueError(f"not a consumed record: {msg.error()!r}")
    return Position(topic, partition, offset)


def value_of(msg: Message) -> bytes:
    """The record's value. ValueError for a tombstone: on a topic whose records all carry
    one it is as malformed as any body that cannot be decoded (the sink dead-letters it)."""
    value = msg.value()
    if value is None:
        topic, partition, offset = position_of(msg)
        raise ValueError(f"{topic}[{partition}]@{offset} has no value (a tombstone)")
    return value
