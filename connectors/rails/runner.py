"""The one connector loop every rail shares: consume, deliver, record, commit.

Reads ``invoices.<rail>`` with confluent-kafka and hands each invoice to the
rail. Outcomes go to ``invoices.status`` (delivered with the rail's ids; retrying
with the rail's error and when the next attempt is due; failed) and, when the
rail refuses an invoice or transient failures outlast the retry horizon, to
``invoices.dlq`` with the rail's error and the original bytes. What a failure
means is decided by one policy for every rail (:mod:`connectors.rails.policy`).

Guarantees:

* **The poll interval holds whatever the backlog.** Between two calls of the
  consumer's ``consume()`` the runner makes at most one delivery attempt (plus a
  commit and the producer's callbacks). Records read go to an in-process queue;
  when it holds ``max_pending`` invoices, or the circuit breaker is open, the
  partitions are paused and ``consume()`` goes on being called (it returns nothing
  but keeps the consumer in its group). So the time between polls is bounded by one
  delivery (the rail's own timeouts), never by the number of invoices waiting, and
  ``max.poll.interval.ms`` (``RAILYARD_RAIL_<RAIL>_MAX_POLL_INTERVAL`` [5m]) only
  needs to exceed one delivery.
* Offsets are committed only past invoices whose outcome records the broker has
  acknowledged (see :mod:`connectors.rails.inflight`). A crash redelivers; the
  rail's idempotency key makes the rail hold each invoice once all the same.
* An invoice in backoff waits in an in-process schedule while later invoices are
  delivered. Retries stop at the retry horizon (:mod:`connectors.rails.backoff`).
* A per-rail circuit breaker (:mod:`connectors.rails.breaker`) opens after
  consecutive transient failures, or at once when the rail refuses our
  credentials (401/403: wrong for every invoice, so never a dead letter); while it
  is open nothing is attempted and the partitions are paused, then one probe goes
  after the cool-down and a success resumes delivery.
* SIGTERM (:meth:`RailRunner.stop`) lets the delivery in progress finish, waits
  for its records, commits, and leaves invoices still waiting uncommitted for
  the next run, which tries them afresh.

Time comes from the injected ``clock`` (monotonic seconds), ``now`` (instants on
the records) and ``sleep`` (the wait when nothing is due), so a test can run hours
of backoff and outage in seconds. Retry counts live in memory: after a restart an
invoice gets a fresh horizon.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from confluent_kafka import Consumer as KafkaConsumer
from confluent_kafka import KafkaError, Message, Producer, TopicPartition

from connectors.kafka import topics
from connectors.kafka.admin import create_topics
from connectors.kafka.client_logs import quiet_client_config
from connectors.metrics import (
    CIRCUIT_STATE,
    INVOICES_DEAD_LETTERED,
    INVOICES_DELIVERED,
    INVOICES_RETRIED,
    report_consumer_lag,
)
from connectors.metrics import serve as serve_metrics
from connectors.processes import arm_shutdown_deadline
from connectors.rails.backoff import RetryPolicy
from connectors.rails.base import Delivery, Rail, RailError, TransientRailError
from connectors.rails.breaker import BreakerState, CircuitBreaker
from connectors.rails.config import RailConfig
from connectors.rails.inflight import InFlight, Pending
from connectors.rails.outcomes import (
    DeadLetterReason,
    DeliveryStatus,
    dead_letter_record,
    status_record,
)
from connectors.rails.policy import Verdict, classify
from streams.domain.errors import RailyardError
from streams.settings import Settings, parse_duration
from streams.wire.invoices import decode_invoice
from streams.wire.records import INVOICE_DEAD_LETTERS, INVOICE_STATUS

log = logging.getLogger("railyard.rails")

FETCH_BATCH = 100
"""Records taken per ``consume()``: they only join the queue, so this bounds memory
churn per poll, not the time between polls."""
DEFAULT_MAX_POLL_INTERVAL = 300.0


@dataclass
class RunStats:
    delivered: int = 0
    retries: int = 0
    failed: int = 0
    """Dead-lettered: rejected, exhausted or undecodable."""
    outages: int = 0
    """Times the circuit breaker opened (a failed probe re-opening it counts too)."""

    @property
    def settled(self) -> int:
        return self.delivered + self.failed


class RailRunner:
    """Delivers one rail's invoices; :meth:`run` until stopped, idle or done."""

    def __init__(
        self,
        settings: Settings,
        rail: Rail,
        config: RailConfig,
        *,
        policy: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        group_id: str | None = None,
        max_pending: int = 1000,
        commit_interval: float = 0.5,
        idle_wait: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.rail = rail
        self.name = rail.name
        self.config = config
        self.policy = policy or RetryPolicy.from_config(config)
        self.breaker = breaker or CircuitBreaker.from_config(config)
        interval = config.get("max_poll_interval")
        self.max_poll_interval = (
            parse_duration(interval).total_seconds() if interval else DEFAULT_MAX_POLL_INTERVAL
        )
        self.topic = topics.topic_name(settings, topics.rail_topic(self.name))
        self.status_topic = topics.topic_name(settings, topics.INVOICES_STATUS)
        self.dlq_topic = topics.topic_name(settings, topics.INVOICES_DLQ)
        self.group_id = group_id or f"{settings.topic_prefix}railyard-rail-{self.name}"
        self.max_pending = max_pending
        self.commit_interval = commit_interval
        self.idle_wait = idle_wait
        self.clock, self.now, self.sleep, self.rand = clock, now, sleep, rand
        self.stats = RunStats()
        self._inflight = InFlight()
        self._committed: dict[tuple[str, int], int] = {}
        self._lag_reported: set[tuple[str, str]] = set()
        self._stopping = False
        self._paused = False
        self._fatal: str | None = None
        self._consumer: KafkaConsumer | None = None
        self._producer: Producer | None = None

    def stop(self) -> None:
        """Finish the delivery in progress, record and commit, then return from :meth:`run`."""
        self._stopping = True

    # -- lifecycle ---------------------------------------------------------------

    def run(self, *, max_invoices: int | None = None, idle_exit: float | None = None) -> RunStats:
        """Deliver until :meth:`stop`, ``max_invoices`` settled, or ``idle_exit`` s with nothing to do."""
        wanted = {self.topic, self.status_topic, self.dlq_topic}
        specs = topics.rail_topic_specs(self.settings, [self.name]) + [
            s for s in topics.topic_specs(self.settings) if s.name in wanted
        ]
        create_topics(self.settings, specs)
        self._producer = Producer(
            {
                **quiet_client_config(),
                "bootstrap.servers": self.settings.kafka_bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
            }
        )
        self._consumer = KafkaConsumer(
            {
                **quiet_client_config(),
                "bootstrap.servers": self.settings.kafka_bootstrap,
                "group.id": self.group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                "session.timeout.ms": 10_000,
                "heartbeat.interval.ms": 2_000,
                "max.poll.interval.ms": int(self.max_poll_interval * 1000),
            }
        )
        self._consumer.subscribe([self.topic], on_revoke=self._on_revoke)
        log.info(
            "rail %s: delivering %s (group %s; retries: base %.3gs, cap %.3gs, horizon %.0fs%s)",
            self.name,
            self.topic,
            self.group_id,
            self.policy.base,
            self.policy.cap,
            self.policy.horizon,
            f", at most {self.policy.max_attempts} attempts" if self.policy.max_attempts else "",
        )
        last_activity = self.clock()
        last_commit = last_report = self.clock()
        try:
            while not self._stopping:
                self._producer.poll(0)
                self._check_fatal()
                if self.clock() - last_commit >= self.commit_interval:
                    self._commit()
                    last_commit = self.clock()
                    report_consumer_lag(self._consumer, self._committed, self._lag_reported)
                if self.clock() - last_report >= 30:
                    self._report()
                    last_report = self.clock()
                if max_invoices is not None and self.stats.settled >= max_invoices:
                    break
                if (
                    idle_exit is not None
                    and not len(self._inflight)
                    and self.clock() - last_activity >= idle_exit
                ):
                    log.info("rail %s: idle for %.0fs, exiting", self.name, idle_exit)
                    break
                # At most one attempt per turn, then consume() again: the poll interval
                # is bounded by one delivery, whatever waits in the queue.
                attempted = self._attempt_next()
                room = self.max_pending - len(self._inflight)
                # Once paused for a full queue, resume at half full, not at the first free
                # slot: each resume drops the prefetched records and fetches again.
                full = room <= (self.max_pending // 2 if self._paused else 0)
                if max_invoices is not None:
                    room = min(room, max_invoices - self.stats.settled - len(self._inflight))
                    full = full or room <= 0
                self._pause(full or self.breaker.state is not BreakerState.CLOSED)
                CIRCUIT_STATE.labels(self.name).state(self.breaker.state.value)
                read = 0
                for msg in self._consumer.consume(max(1, min(room, FETCH_BATCH)), 0):
                    read += self._read(msg)
                if attempted or read:
                    last_activity = self.clock()
                elif not self._inflight.has_work(self.clock()) or not self._may_attempt():
                    self.sleep(self._wait())
        finally:
            self._close()
        return self.stats

    def _close(self) -> None:
        assert self._producer is not None and self._consumer is not None
        try:
            self._producer.flush(30)
            self._settle()
            if self._fatal is None:
                self._commit()
            waiting = len(self._inflight)
            if waiting:
                log.info(
                    "rail %s: %d invoice(s) not settled are left for the next run",
                    self.name,
                    waiting,
                )
            self._report()
        finally:
            self._consumer.close()

    # -- reading and delivering ----------------------------------------------------

    def _wait(self) -> float:
        """How long to wait (on the runner's clock) when nothing can be attempted now."""
        now = self.clock()
        until = [self.idle_wait]
        if self.breaker.state is BreakerState.OPEN:
            # Retries come due behind an open breaker: its probe is the next thing to do.
            until.append(self.breaker.probe_at() - now)
        else:
            due = self._inflight.next_due()
            if due is not None:
                until.append(due - now)
        return max(0.0, min(until))

    def _may_attempt(self) -> bool:
        """Whether the breaker would let an attempt go now (without turning it half-open)."""
        state = self.breaker.state
        if state is BreakerState.OPEN:
            return self.clock() >= self.breaker.probe_at()
        return state is BreakerState.CLOSED

    def _pause(self, full: bool) -> None:
        """Stop fetching while ``full`` (re-applied each time: an assignment may be new)."""
        assert self._consumer is not None
        if full:
            self._consumer.pause(self._consumer.assignment())
        elif self._paused:
            self._consumer.resume(self._consumer.assignment())
        self._paused = full

    def _read(self, msg: Message) -> bool:
        """Queue one consumed record for its attempt (or dead-letter what is not an invoice)."""
        err = msg.error()
        if err is not None:
            if err.code() != KafkaError._PARTITION_EOF:
                log.warning("rail %s: consume error: %s", self.name, err)
            return False
        entry = Pending(
            msg.topic() or "", msg.partition() or 0, msg.offset() or 0, msg.value() or b""
        )
        self._inflight.add(entry)
        try:
            entry.invoice = decode_invoice(entry.value)
        except Exception as exc:  # a producer bug: keep the bytes, never drop silently
            log.error("rail %s: undecodable record at offset %d: %r", self.name, entry.offset, exc)
            self._give_up(entry, DeadLetterReason.UNDECODABLE, "undecodable", repr(exc)[:500])
            return True
        if entry.invoice.rail != self.name:
            message = f"invoice for rail {entry.invoice.rail!r} on {self.topic}"
            log.error("rail %s: %s: %s", self.name, entry.invoice.number, message)
            self._give_up(entry, DeadLetterReason.MISROUTED, "misrouted", message)
            return True
        self._inflight.queue(entry)
        return True

    def _attempt_next(self) -> bool:
        """Attempt the next invoice due, if the breaker lets one go; whether one was."""
        now = self.clock()
        if not self._inflight.has_work(now) or not self.breaker.allows(now):
            return False
        entry = self._inflight.take(now)
        assert entry is not None  # has_work said so
        if self.breaker.state is BreakerState.HALF_OPEN:
            log.info("rail %s: probing with %s", self.name, entry.invoice and entry.invoice.number)
        self._attempt(entry)
        return True

    def _attempt(self, entry: Pending) -> None:
        invoice = entry.invoice
        assert invoice is not None
        entry.attempts += 1
        if entry.first_attempt_at is None:
            entry.first_attempt_at = self.clock()
        try:
            delivery = self.rail.deliver(invoice)
        except Exception as exc:
            self._failed(entry, exc)
        else:
            if self.breaker.succeeded():
                log.warning("rail %s: the rail answers again; circuit closed, resuming", self.name)
            self.stats.delivered += 1
            INVOICES_DELIVERED.labels(self.name).inc()
            refs = ", ".join(f"{k}={v}" for k, v in sorted(delivery.references.items()))
            log.info(
                "rail %s: delivered %s (attempt %d) %s",
                self.name,
                invoice.number,
                entry.attempts,
                refs,
            )
            self._publish_status(entry, DeliveryStatus.DELIVERED, delivery=delivery, resolved=True)

    def _failed(self, entry: Pending, exc: Exception) -> None:
        """One failed attempt, as the retry policy reads it."""
        assert entry.invoice is not None
        if isinstance(exc, RailError):
            code, message = exc.code, self.config.redact(str(exc))
        else:
            # A bug in the rail module, not an answer from the rail: retried like a transient
            # failure (it may be a network error the module failed to classify) and in the
            # end dead-lettered with the exception's type, never swallowed.
            log.exception(
                "rail %s: unexpected error delivering %s", self.name, entry.invoice.number
            )
            code, message = (
                "internal_error",
                self.config.redact(f"{type(exc).__name__}: {exc}")[:500],
            )
        verdict = classify(exc)
        if verdict is Verdict.REFUSE:
            self.breaker.refused()
            log.error("rail %s: %s rejected: %s", self.name, entry.invoice.number, message)
            self._give_up(entry, DeadLetterReason.REJECTED, code, message)
        elif verdict is Verdict.OUTAGE:
            self._outage(entry, code, message)
        else:
            retry_after = exc.retry_after if isinstance(exc, TransientRailError) else None
            self._transient(entry, code, message, retry_after)

    def _outage(self, entry: Pending, code: str | None, message: str) -> None:
        """The rail refuses our credentials: wrong for every invoice, so pause, never dead-letter.

        The invoice waits for the breaker's next probe, however long that takes: it is
        not the invoice's fault, and the retry horizon does not apply (it counts again
        from the first attempt after the credentials work).
        """
        assert entry.invoice is not None
        entry.last_error = (code, message)
        entry.first_attempt_at = None
        self.breaker.failed(self.clock(), message, outage=True)
        self.stats.outages += 1
        wait = max(0.0, self.breaker.probe_at() - self.clock())
        log.error(
            "rail %s: the rail refuses our credentials (%s): every delivery is paused until "
            "they work again; fix the rail's credentials (RAILYARD_RAIL_%s_*); next probe in %.0fs",
            self.name,
            message,
            self.name.upper(),
            wait,
        )
        self._publish_status(
            entry,
            DeliveryStatus.RETRYING,
            error=(code, message),
            retry_at=self.now() + timedelta(seconds=wait),
        )
        # Due exactly at the probe, so this invoice is the probe (not one read after it).
        self._inflight.retry_at(entry, self.breaker.probe_at())

    def _transient(
        self, entry: Pending, code: str | None, message: str, retry_after: float | None
    ) -> None:
        assert entry.invoice is not None and entry.first_attempt_at is not None
        entry.last_error = (code, message)
        if self.breaker.failed(self.clock(), message):
            self.stats.outages += 1
            log.error(
                "rail %s: circuit open after %d consecutive failures (%s): partitions paused, "
                "next probe in %.0fs",
                self.name,
                self.breaker.failures,
                message,
                max(0.0, self.breaker.probe_at() - self.clock()),
            )
        delay = self.policy.delay(entry.attempts, retry_after, self.rand)
        elapsed = self.clock() - entry.first_attempt_at
        if self.policy.gives_up(entry.attempts, elapsed, delay):
            log.error(
                "rail %s: giving up on %s after %d attempts over %.0fs: %s",
                self.name,
                entry.invoice.number,
                entry.attempts,
                elapsed,
                message,
            )
            self._give_up(entry, DeadLetterReason.EXHAUSTED, code, message)
            return
        self.stats.retries += 1
        INVOICES_RETRIED.labels(self.name).inc()
        log.warning(
            "rail %s: %s attempt %d failed (%s), retrying in %.2fs",
            self.name,
            entry.invoice.number,
            entry.attempts,
            message,
            delay,
        )
        self._publish_status(
            entry,
            DeliveryStatus.RETRYING,
            error=(code, message),
            retry_at=self.now() + timedelta(seconds=delay),
        )
        self._inflight.retry_at(entry, self.clock() + delay)

    def _give_up(
        self, entry: Pending, reason: DeadLetterReason, code: str | None, message: str
    ) -> None:
        self.stats.failed += 1
        INVOICES_DEAD_LETTERED.labels(self.name, reason).inc()
        record = dead_letter_record(
            self.name,
            reason,
            invoice=entry.invoice,
            error_code=code,
            error_message=message,
            attempts=entry.attempts,
            topic=entry.topic,
            partition=entry.partition,
            offset=entry.offset,
            original=entry.value,
            failed_at=self.now(),
        )
        key = (
            entry.invoice.id if entry.invoice else f"{entry.topic}:{entry.partition}:{entry.offset}"
        )
        self._produce(entry, self.dlq_topic, key, INVOICE_DEAD_LETTERS.encode(record))
        if entry.invoice is not None:
            self._publish_status(entry, DeliveryStatus.FAILED, error=(code, message))
        entry.resolved = True

    def _publish_status(
        self,
        entry: Pending,
        status: DeliveryStatus,
        *,
        delivery: Delivery | None = None,
        error: tuple[str | None, str] | None = None,
        retry_at: datetime | None = None,
        resolved: bool = False,
    ) -> None:
        assert entry.invoice is not None
        record = status_record(
            entry.invoice,
            self.name,
            status,
            entry.attempts,
            self.now(),
            delivery=delivery,
            error_code=error[0] if error else None,
            error_message=error[1] if error else None,
            retry_at=retry_at,
        )
        self._produce(entry, self.status_topic, entry.invoice.id, INVOICE_STATUS.encode(record))
        if resolved:
            entry.resolved = True

    # -- recording and committing ----------------------------------------------------

    def _produce(self, entry: Pending, topic: str, key: str, value: bytes) -> None:
        assert self._producer is not None

        def acked(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                self._fatal = (
                    f"could not record the outcome of offset {entry.offset} to {topic}: {err}"
                )
            else:
                entry.unacked -= 1

        entry.unacked += 1
        self._producer.produce(topic, value, key.encode(), on_delivery=acked)
        self._producer.poll(0)

    def _check_fatal(self) -> None:
        if self._fatal is not None:
            raise RailyardError(f"rail {self.name}: {self._fatal}")

    def _settle(self) -> None:
        self._inflight.settle_ready()

    def _commit(self) -> None:
        assert self._consumer is not None
        self._settle()
        points = self._inflight.commit_points()
        changed = [
            TopicPartition(t, p, o)
            for (t, p), o in points.items()
            if self._committed.get((t, p)) != o
        ]
        if not changed:
            return
        self._consumer.commit(offsets=changed, asynchronous=False)
        for tp in changed:
            self._committed[(tp.topic, tp.partition)] = tp.offset

    def _on_revoke(self, consumer: KafkaConsumer, partitions: list[TopicPartition]) -> None:
        assert self._producer is not None
        self._producer.flush(30)
        if self._fatal is None:
            self._commit()
        keys = {(tp.topic, tp.partition) for tp in partitions}
        dropped = self._inflight.forget(keys)
        for key in keys:
            self._committed.pop(key, None)
        self._paused = False
        if dropped:
            log.info(
                "rail %s: partitions revoked; %d unsettled invoice(s) left to their new owner",
                self.name,
                dropped,
            )

    def _report(self) -> None:
        log.info(
            "rail %s: %d delivered, %d failed, %d retries, %d waiting, %d queued, circuit %s; "
            "committed %s",
            self.name,
            self.stats.delivered,
            self.stats.failed,
            self.stats.retries,
            self._inflight.waiting,
            self._inflight.ready,
            self.breaker.state,
            ", ".join(f"{p}@{o}" for (_, p), o in sorted(self._committed.items())) or "nothing yet",
        )


def run_rail(
    settings: Settings,
    name: str,
    *,
    config: RailConfig | None = None,
    max_invoices: int | None = None,
    idle_exit: float | None = None,
) -> RunStats:
    """Build ``name``'s rail from its config and deliver (stopped by SIGTERM/SIGINT)."""
    import signal

    from connectors.rails.payment_refs import attach_recorded_payments
    from connectors.rails.registry import create

    config = config or RailConfig.from_env(name)
    rail = create(name, config)
    attach_recorded_payments(rail, settings)  # a refund after a restart finds its payment
    runner = RailRunner(settings, rail, config)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: runner.stop())
    arm_shutdown_deadline()
    serve_metrics(settings, f"rail-{name}")
    return runner.run(max_invoices=max_invoices, idle_exit=idle_exit)
