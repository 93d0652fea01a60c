"""How every stage consumes: batches, acked only once processed, state per partition.

Each stage keeps state per input partition and forgets it when the partition is
revoked (it is rebuilt from Kafka on the next assignment). Events are acked only
after the whole batch was processed and its outputs delivered, so an offset is never
committed past work that could still be lost.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import faust
from faust.types import TP, EventT, StreamT


def by_partition(events: Iterable[EventT]) -> dict[int, list[EventT]]:
    """Events grouped by input partition, each group in offset order."""
    groups: dict[int, list[EventT]] = defaultdict(list)
    for event in events:
        groups[event.message.partition].append(event)
    return groups


def batch_agent(
    app: faust.App,
    topic: faust.TopicT,
    name: str,
    process: Callable[[list[EventT]], Awaitable[None]],
    *,
    messages: int,
    within_s: float,
    forget: Callable[[set[TP]], None] | None = None,
) -> None:
    """Register agent ``name``: up to ``messages`` per batch (or what ``within_s`` brings),
    ``process`` them, then ack them; ``forget`` hears of revoked partitions."""

    async def consume(stream: StreamT[bytes]) -> None:
        async for events in stream.noack().noack_take(messages, within_s):
            await process(list(events))
            for event in events:
                await stream.ack(event)

    consume.__name__ = consume.__qualname__ = name
    app.agent(topic, name=name)(consume)
    if forget is not None:

        async def on_revoked(sender: Any, revoked: set[TP], **kwargs: Any) -> None:
            forget(revoked)

        app.on_partitions_revoked.connect(on_revoked)
