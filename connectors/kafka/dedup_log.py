"""Rebuilds a partition's :class:`SeenEvents` from the ``usage.dedup-log`` topic.

Partition *p* of the log holds what partition *p* of ``usage`` accepted, one record
per processed batch, so a worker that is assigned *p* (after a restart or a
rebalance) reads exactly that partition before it screens anything. The topic's
time retention is the de-duplication horizon.
"""

from __future__ import annotations

import time

from connectors.kafka.replay import read_partition
from streams.domain.dedup import SeenEvents, unpack_entries


def load_seen(bootstrap: str, topic: str, partition: int, retention_s: float) -> SeenEvents:
    """The ids accepted on ``partition`` within ``retention_s`` of now. Arrival is the log
    record's broker time, so it is compared with the wall clock, as the broker's is."""
    seen = SeenEvents()
    for msg in read_partition(bootstrap, topic, partition):
        seen.remember(unpack_entries(msg.value() or b""), msg.timestamp()[1] / 1000.0)
    seen.forget_arrived_before(time.time() - retention_s)
    return seen
