"""Publishing a request's events and waiting until the broker acknowledged every one.

The API answers 2xx only after this returns: a crash after the answer loses nothing,
and a crash before it leaves the producer to retry, the same ids de-duplicated by the
stream. Delivery callbacks come from a thread that polls the Kafka client; each one is
handed to the event loop, which alone touches the counts.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Protocol

from connectors.kafka.producer import UsageProducer
from streams.domain.usage import UsageEvent

ACK_TIMEOUT_MS = 30_000
"""How long the Kafka client keeps trying one message before reporting it failed (the
request then gets 503 and the producer retries)."""


class Backpressure(Exception):
    """Too many events await the broker's acknowledgement: answer 429, retry later."""


class NotAcknowledged(Exception):
    """The broker did not acknowledge every event of the request: answer 503."""


class Publisher(Protocol):
    inflight: int

    async def publish(self, events: Sequence[UsageEvent]) -> None: ...


class AckPublisher:
    """:class:`Publisher` over :class:`UsageProducer` (its encoding and partitioning)."""

    def __init__(self, producer: UsageProducer, max_inflight: int) -> None:
        self.producer = producer
        self.max_inflight = max_inflight
        self.inflight = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="api-acks", daemon=True)

    def start(self) -> AckPublisher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.producer.poll(0.05)

    async def publish(self, events: Sequence[UsageEvent]) -> None:
        total = len(events)
        if self.inflight and self.inflight + total > self.max_inflight:
            raise Backpressure(f"{self.inflight} events await the broker's acknowledgement")
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        state = {"acked": 0, "abandoned": False}
        errors: list[str] = []

        def settle(count: int, error: str | None) -> None:  # on the event loop
            if state["abandoned"]:
                return
            self.inflight -= count
            if error is None:
                state["acked"] += count
            else:
                errors.append(error)
            if not done.done() and (errors or state["acked"] == total):
                if errors:
                    done.set_exception(NotAcknowledged(errors[0]))
                else:
                    done.set_result(None)

        def on_delivery(count: int, error: str | None) -> None:  # on the poll thread
            loop.call_soon_threadsafe(settle, count, error)

        self.inflight += total
        try:
            self.producer.send_now(events, on_delivery)
        except BufferError:
            state["abandoned"] = True  # what went out is a retry's duplicate, dropped later
            self.inflight -= total
            raise Backpressure("the Kafka client's queue is full") from None
        await done
