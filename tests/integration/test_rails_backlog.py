"""A month-end backlog through a slow rail with a 10-minute outage, on the runner's clock.

The runner is the real one, on the real broker; only time is injected. The rail is
a minimal in-test :class:`~connectors.rails.base.Rail` that counts documents per
idempotency key, takes 50 ms of the injected clock per call, and answers 503 for
ten minutes of it. Ten thousand invoices cost about 8 minutes of delivery plus the
outage on that clock, and a few seconds of the test's. The retry and breaker
settings are the defaults (``RetryPolicy()``, ``CircuitBreaker()``).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import pytest
from confluent_kafka import Consumer, TopicPartition

from connectors.kafka import topics
from connectors.rails.base import Delivery, PermanentRailError, TransientRailError
from connectors.rails.config import RailConfig
from connectors.rails.runner import RailRunner
from streams.domain.invoice import Invoice
from streams.settings import Settings
from tests.fixtures.rails.invoices import publish, sample_invoice
from tests.integration.rails_harness import dead_letters, statuses, wait_for

pytestmark = pytest.mark.integration

EPOCH = datetime(2025, 2, 1, tzinfo=UTC)
BACKLOG = 10_000
CALL = 0.05
"""Seconds of the injected clock each call to the rail takes."""
OUTAGE_AFTER, OUTAGE_FOR = 60.0, 600.0
"""The outage starts a minute after the first call and lasts ten minutes."""


class FakeClock:
    """Monotonic seconds and instants that move only when someone sleeps on them."""

    def __init__(self) -> None:
        self._t = 0.0
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        with self._lock:
            return self._t

    def now(self) -> datetime:
        return EPOCH + timedelta(seconds=self.monotonic())

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._t += max(0.0, seconds)

    def idle(self, seconds: float) -> None:
        """The runner's wait: the clock jumps, and the broker's threads get a moment."""
        self.advance(seconds)
        time.sleep(0.001)


class SlowRail:
    """One document per idempotency key, 50 ms per call, down for ten minutes."""

    name: ClassVar[str] = "slowpeer"

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.documents: Counter[str] = Counter()
        self.first_call: float | None = None
        self.calls_in_outage = 0

    def down(self, at: float) -> bool:
        assert self.first_call is not None
        return self.first_call + OUTAGE_AFTER <= at < self.first_call + OUTAGE_AFTER + OUTAGE_FOR

    def deliver(self, invoice: Invoice) -> Delivery:
        if self.first_call is None:
            self.first_call = self.clock.monotonic()
        self.clock.advance(CALL)
        if self.down(self.clock.monotonic()):
            self.calls_in_outage += 1
            raise TransientRailError("slowpeer 503: down for maintenance", status=503)
        self.documents[invoice.idempotency_key] += 1
        return Delivery(self.name, invoice.id, {"document": invoice.idempotency_key[:12]}, "open")

    def status(self, delivery: Delivery) -> str:
        return delivery.status


def committed(settings: Settings, group: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": group})
    try:
        (tp,) = consumer.committed([TopicPartition(topic, 0)], timeout=10)
        return int(tp.offset)
    finally:
        consumer.close()


def test_a_backlog_through_a_slow_rail_and_an_outage_leaves_one_document_per_key(
    stack: Settings,
) -> None:
    clock = FakeClock()
    rail = SlowRail(clock)
    invoices = [sample_invoice(n, rail.name) for n in range(BACKLOG)]
    assert len({i.idempotency_key for i in invoices}) == BACKLOG
    publish(stack, invoices)

    runner = RailRunner(
        stack,
        rail,
        RailConfig(rail.name, {}),
        commit_interval=5.0,
        idle_wait=1.0,
        clock=clock.monotonic,
        now=clock.now,
        sleep=clock.idle,
        rand=random.Random(16).random,
    )
    errors: list[BaseException] = []

    def run() -> None:
        try:
            runner.run()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    started = time.monotonic()
    thread.start()
    try:
        wait_for(
            lambda: runner.stats.delivered >= BACKLOG or bool(errors),
            f"{BACKLOG} deliveries",
            timeout=240,
        )
    finally:
        runner.stop()
        thread.join(60)
    assert not errors, errors
    assert not thread.is_alive()
    took = time.monotonic() - started

    # Exactly one document per idempotency key, and nothing given up on.
    assert len(rail.documents) == BACKLOG
    assert set(rail.documents.values()) == {1}
    assert runner.stats.failed == 0
    assert dead_letters(stack) == []

    # The outage happened, on the injected clock, and the breaker paused deliveries
    # instead of spending the invoices' attempts: a handful of calls in ten minutes.
    assert rail.first_call is not None
    assert clock.monotonic() > rail.first_call + OUTAGE_AFTER + OUTAGE_FOR
    assert runner.stats.outages >= 1
    assert 5 <= rail.calls_in_outage <= 15, rail.calls_in_outage
    assert runner.stats.retries == rail.calls_in_outage

    # Every invoice is recorded delivered, once each; the failed attempts as retrying.
    steps = statuses(stack)
    delivered = Counter(s["invoice_id"] for s in steps if s["status"] == "delivered")
    assert set(delivered) == {i.id for i in invoices} and set(delivered.values()) == {1}
    assert sum(s["status"] == "retrying" for s in steps) == rail.calls_in_outage

    # All of it committed: a restart would read nothing again.
    topic = topics.topic_name(stack, topics.rail_topic(rail.name))
    assert committed(stack, runner.group_id, topic) == BACKLOG
    # Twenty minutes of the runner's clock, seconds of the test's (generous for a shared machine).
    assert clock.monotonic() > BACKLOG * CALL + OUTAGE_FOR
    assert took < 180, took


class SleepyRail:
    """A rail that really takes ``seconds`` per invoice (the wall clock, on purpose)."""

    name: ClassVar[str] = "sleepy"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.documents: Counter[str] = Counter()

    def deliver(self, invoice: Invoice) -> Delivery:
        time.sleep(self.seconds)
        self.documents[invoice.idempotency_key] += 1
        return Delivery(self.name, invoice.id, {"document": invoice.idempotency_key[:12]}, "open")

    def status(self, delivery: Delivery) -> str:
        return delivery.status


def test_a_backlog_longer_than_the_poll_interval_keeps_the_consumer_in_its_group(
    stack: Settings,
) -> None:
    # 300 invoices at 50 ms is 15 s of delivery, past an 11 s max.poll.interval.ms: a
    # runner that delivered a whole consume() batch between polls would leave its group
    # and fail its commit; this one polls between any two deliveries.
    rail = SleepyRail(0.05)
    invoices = [sample_invoice(n, rail.name) for n in range(300)]
    publish(stack, invoices)
    runner = RailRunner(
        stack, rail, RailConfig(rail.name, {"max_poll_interval": "11s"}), commit_interval=1.0
    )
    assert runner.max_poll_interval == 11.0
    stats = runner.run(max_invoices=len(invoices))
    assert stats.delivered == len(invoices) and stats.failed == 0
    assert set(rail.documents.values()) == {1} and len(rail.documents) == len(invoices)
    topic = topics.topic_name(stack, topics.rail_topic(rail.name))
    assert committed(stack, runner.group_id, topic) == len(invoices)


class LockedOutRail:
    """Refuses our credentials (401) for ``locked`` seconds of the injected clock, then
    answers one 503, then takes every invoice."""

    name: ClassVar[str] = "lockedout"

    def __init__(self, clock: FakeClock, locked: float) -> None:
        self.clock, self.locked = clock, locked
        self.start: float | None = None
        self.flaked = False
        self.documents: Counter[str] = Counter()

    def deliver(self, invoice: Invoice) -> Delivery:
        now = self.clock.monotonic()
        self.start = now if self.start is None else self.start
        if now < self.start + self.locked:
            raise PermanentRailError("lockedout 401: invalid token", status=401)
        if not self.flaked:
            self.flaked = True
            raise TransientRailError("lockedout 503: warming up", status=503)
        self.documents[invoice.idempotency_key] += 1
        return Delivery(self.name, invoice.id, {}, "open")

    def status(self, delivery: Delivery) -> str:
        return delivery.status


def test_time_paused_for_credentials_does_not_count_toward_the_retry_horizon(
    stack: Settings,
) -> None:
    clock = FakeClock()
    rail = LockedOutRail(clock, locked=25 * 3600.0)  # longer than the 24 h horizon
    invoices = [sample_invoice(n, rail.name) for n in range(3)]
    publish(stack, invoices)
    runner = RailRunner(
        stack,
        rail,
        RailConfig(rail.name, {}),
        idle_wait=60.0,
        clock=clock.monotonic,
        now=clock.now,
        sleep=clock.idle,
        rand=random.Random(16).random,
    )
    stats = runner.run(max_invoices=len(invoices))
    assert clock.monotonic() > 25 * 3600.0
    assert stats.outages > 100 and stats.failed == 0, stats
    assert dead_letters(stack) == []
    assert set(rail.documents.values()) == {1} and len(rail.documents) == len(invoices)
