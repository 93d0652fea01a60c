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
from faust.streams import Stream
from faust.types import TP, EventT, StreamT
from mode import Signal


def by_partition(events: Iterable[EventT[bytes]]) -> dict[int, list[EventT[bytes]]]:
    """Events grouped by input partition, each group in offset order."""
    groups: dict[int, list[EventT[bytes]]] = defaultdict(list)
    for event in events:
        groups[event.message.partition].append(event)
    return groups


def event_value(event: EventT[bytes]) -> bytes:
    """The event's message value. ValueError for a tombstone: the topics the stages read
    after ``usage`` are written by Railyard alone, and never carry one."""
    value = event.message.value
    if value is None:
        m = event.message
        raise ValueError(f"{m.topic}[{m.partition}]@{m.offset} has no value (a tombstone)")
    return value


def batch_agent(
    app: faust.App,
    topic: faust.TopicT,
    name: str,
    process: Callable[[list[EventT[bytes]]], Awaitable[None]],
    *,
    messages: int,
    within_s: float,
    forget: Callable[[set[TP]], None] | None = None,
) -> None:
    """Register agent ``name``: up to ``messages`` per batch (or what ``within_s`` brings),
    ``process`` them, then ack them; ``forget`` hears of revoked partitions."""

    async def consume(stream: StreamT[bytes]) -> None:
        # Faust hands an agent a Stream, and Stream.noack() returns one; both are typed
        # StreamT, which declares neither noack() nor noack_take().
        assert isinstance(stream, Stream)
        manual = stream.noack()
        assert isinstance(manual, Stream)
        async for buffered in manual.noack_take(messages, within_s):
            # The events themselves (so they can be acked), though noack_take is typed
            # as yielding values: it casts each buffered event to the value type.
            events: list[EventT[bytes]] = list(buffered)
            await process(events)
            for event in events:
                await stream.ack(event)

    consume.__name__ = consume.__qualname__ = name
    app.agent(topic, name=name)(consume)
    if forget is not None:

        async def forget_revoked(revoked: set[TP]) -> None:
            forget(revoked)

        on_partitions(app.on_partitions_revoked, forget_revoked)


def on_partitions(signal: Signal[set[TP]], handler: Callable[[set[TP]], Awaitable[None]]) -> None:
    """Have ``handler`` hear every partition set a rebalance signal sends
    (``app.on_partitions_assigned`` or ``app.on_partitions_revoked``)."""

    # Faust calls receivers as receiver(app, partitions, signal=...); mode types a
    # receiver as taking its sender positionally, then any arguments at all.
    async def receiver(sender: object, /, *args: set[TP], **kwargs: Any) -> None:
        (partitions,) = args
        await handler(partitions)

    signal.connect(receiver)


def every(app: faust.App, interval_s: float, tick: Callable[[], Awaitable[None]]) -> None:
    """Run ``tick`` every ``interval_s`` while the worker runs: ``@app.timer``, which Faust
    types as a bare Callable (so a decorated function would lose its type)."""
    app.timer(interval=interval_s)(tick)
