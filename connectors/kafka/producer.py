"""Publishing usage to the ``usage`` topic.

Events are partitioned by subject with Kafka's Java-compatible murmur2 hash, so
producers in any language put one subject on one partition (the stream
de-duplicates per partition). Railyard's producer packs the events bound for one
partition into ``UsageBatch`` messages of up to ``batch_events`` events, sent at
the latest ``linger_s`` after the first: one Kafka message per few hundred events
keeps per-message cost off the hot path. Single-event messages keyed by subject,
from other producers, are equally valid.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from connectors.kafka import topics
from connectors.kafka.partitioner import partition_for
from streams.domain.cloudevents import from_json
from streams.domain.errors import StackError
from streams.domain.meters import MeterIndex
from streams.domain.rejections import Reason, Rejection
from streams.domain.usage import UsageEvent
from streams.domain.validation import Limits, check_event
from streams.settings import Settings
from streams.wire.codec import UsageCodec

MAX_MESSAGE_BYTES = 2_000_000
"""The largest message this producer sends; a bigger line is reported, never sent."""


@dataclass
class DeliveryReport:
    """What the broker confirmed, counted in events (not messages)."""

    delivered: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


class UsageProducer:
    """Validated, batched, keyed publishing of usage events with delivery reports."""

    def __init__(
        self,
        settings: Settings,
        *,
        batch_events: int = 500,
        linger_s: float = 0.05,
        codec: UsageCodec | None = None,
        extra_config: dict[str, object] | None = None,
    ) -> None:
        self.codec = codec or UsageCodec.for_settings(settings.schema_registry_url)
        self.topic = topics.topic_name(settings, topics.USAGE)
        self.batch_events = batch_events
        self.linger_s = linger_s
        self.report = DeliveryReport()
        self._pending: dict[int, list[UsageEvent]] = defaultdict(list)
        self._opened: dict[int, float] = {}
        self._partition_of: dict[str, int] = {}
        self._next_sweep = time.monotonic() + linger_s
        config: dict[str, object] = {
            "bootstrap.servers": settings.kafka_bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 20,
            "compression.type": "lz4",
            "partitioner": "murmur2_random",
            "message.max.bytes": MAX_MESSAGE_BYTES,
        }
        config.update(extra_config or {})
        self.max_message_bytes = int(str(config["message.max.bytes"]))
        self._producer = Producer(config)
        self.partitions = self._partition_count(settings)

    def _partition_count(self, settings: Settings) -> int:
        meta = self._producer.list_topics(self.topic, timeout=30)
        topic = meta.topics.get(self.topic)
        if topic is None or topic.error is not None or not topic.partitions:
            raise StackError(f"topic {self.topic} is not available on {settings.kafka_bootstrap}")
        return len(topic.partitions)

    def partition(self, subject: str) -> int:
        p = self._partition_of.get(subject)
        if p is None:
            p = self._partition_of[subject] = partition_for(subject.encode(), self.partitions)
        return p

    def send(self, event: UsageEvent) -> None:
        partition = self.partition(event.subject)
        pending = self._pending[partition]
        if not pending:
            self._opened[partition] = time.monotonic()
        pending.append(event)
        if len(pending) >= self.batch_events:
            self._send_partition(partition)
        self.sweep()

    def sweep(self) -> None:
        """Send every batch that has waited ``linger_s``: a quiet subject is not held back."""
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + self.linger_s / 2
        for partition, opened in list(self._opened.items()):
            if now - opened >= self.linger_s:
                self._send_partition(partition)

    def send_raw(self, payload: bytes, key: bytes | None = None) -> bool:
        """Publish bytes as they are (the server-side checks will judge them); False when
        the message is larger than this producer or the topic takes, so it was not sent."""
        if len(payload) > self.max_message_bytes:
            return False
        try:
            self._produce(key, payload, 1)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.MSG_SIZE_TOO_LARGE:
                raise
            return False
        return True

    def send_now(
        self,
        events: Sequence[UsageEvent],
        on_delivery: Callable[[int, str | None], None],
    ) -> int:
        """Publish ``events`` at once, one ``UsageBatch`` per partition (of up to
        ``batch_events``), bypassing the linger; ``on_delivery(count, error)`` is called
        once per message, from whichever thread polls. Returns the messages produced.

        For a caller that must know when *these* events are acknowledged (the HTTP API
        answers only then). Raises ``BufferError`` when the client's queue is full, maybe
        after some messages went out: the caller refuses the request and the producer's
        retry re-sends them with the same ids, which the stream de-duplicates."""
        by_partition: dict[int, list[UsageEvent]] = defaultdict(list)
        for event in events:
            by_partition[self.partition(event.subject)].append(event)
        messages = 0
        for partition, group in by_partition.items():
            for start in range(0, len(group), self.batch_events):
                chunk = group[start : start + self.batch_events]
                count = len(chunk)

                def done(err: KafkaError | None, msg: Message, count: int = count) -> None:
                    on_delivery(count, None if err is None else str(err))

                if count == 1:  # a lone event travels as a plain keyed UsageEvent
                    payload = self.codec.encode_event(chunk[0])
                    key = chunk[0].subject.encode()
                    self._producer.produce(self.topic, payload, key, on_delivery=done)
                else:
                    payload = self.codec.encode_batch(chunk)
                    self._producer.produce(
                        self.topic, payload, None, partition=partition, on_delivery=done
                    )
                messages += 1
        self._producer.poll(0)
        return messages

    def poll(self, timeout: float) -> int:
        """Serve delivery callbacks for up to ``timeout`` seconds."""
        return int(self._producer.poll(timeout))

    def _send_partition(self, partition: int) -> None:
        events = self._pending.pop(partition)
        self._opened.pop(partition, None)
        if len(events) == 1:  # a lone event travels as a plain keyed UsageEvent
            self._produce(events[0].subject.encode(), self.codec.encode_event(events[0]), 1)
        else:
            self._produce(None, self.codec.encode_batch(events), len(events), partition)

    def _produce(
        self, key: bytes | None, payload: bytes, count: int, partition: int | None = None
    ) -> None:
        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            if err is None:
                self.report.delivered += count
            else:
                self.report.failed += count
                self.report.errors.append(str(err))

        while True:
            try:
                if partition is None:
                    self._producer.produce(self.topic, payload, key, on_delivery=on_delivery)
                else:
                    self._producer.produce(
                        self.topic, payload, key, partition=partition, on_delivery=on_delivery
                    )
                break
            except BufferError:
                self._producer.poll(0.05)  # local queue full: let deliveries drain
        self._producer.poll(0)

    def flush(self, timeout: float = 60.0) -> DeliveryReport:
        for partition in list(self._pending):
            self._send_partition(partition)
        remaining = self._producer.flush(timeout)
        if remaining:
            self.report.errors.append(f"{remaining} messages not delivered within {timeout}s")
        return self.report

    def close(self, timeout: float = 60.0) -> DeliveryReport:
        """Flush, then release the client. Call it before the broker goes away: an open
        client keeps reconnecting and logs every refused connection."""
        report = self.flush(timeout)
        self._producer.close()
        return report


@dataclass
class ProduceSummary:
    lines: int = 0
    sent: int = 0
    rejected: list[tuple[int, Rejection]] = field(default_factory=list)
    passed_through: int = 0
    delivery: DeliveryReport = field(default_factory=DeliveryReport)


def produce_lines(
    lines: Iterable[bytes | str],
    producer: UsageProducer,
    *,
    limits: Limits,
    meters: MeterIndex | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    passthrough_invalid: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ProduceSummary:
    """Validate CloudEvents JSON lines, publish the valid ones, report the rest by line.

    With ``passthrough_invalid`` the rejected lines are published too, byte for byte,
    so the stream dead-letters them next to everything else (replaying a history
    whose bad records must be kept); a line too large for any message is reported and
    skipped, and the lines around it still go out.
    """
    summary = ProduceSummary()
    clock_read = now()
    last_clock = time.monotonic()
    for number, line in enumerate(lines, start=1):
        summary.lines += 1
        if time.monotonic() - last_clock > 1:
            clock_read, last_clock = now(), time.monotonic()
        raw = line if isinstance(line, bytes) else line.encode("utf-8", "surrogateescape")
        text = raw.rstrip(b"\r\n")
        if not text.strip():
            continue
        decoded = from_json(text)
        problem = (
            decoded
            if isinstance(decoded, Rejection)
            else check_event(decoded, clock_read, limits, meters)
        )
        if problem is not None:
            summary.rejected.append((number, problem))
            if passthrough_invalid:
                key = (problem.subject or "").encode() or None
                if producer.send_raw(text, key):
                    summary.passed_through += 1
                else:
                    too_large = Rejection(
                        Reason.OVERSIZED_PAYLOAD,
                        f"line of {len(text)} bytes is larger than a message may be"
                        f" ({producer.max_message_bytes}): not published",
                        problem.event_id,
                        problem.subject,
                    )
                    summary.rejected[-1] = (number, too_large)
        else:
            assert isinstance(decoded, UsageEvent)
            producer.send(decoded)
            summary.sent += 1
        if progress is not None and number % 1000 == 0:
            progress(1000)
    summary.delivery = producer.flush()
    return summary


def produce_file(path: Path, producer: UsageProducer, **kwargs: object) -> ProduceSummary:
    with open(path, "rb") as f:  # bytes: a line that is not UTF-8 keeps its own bytes
        return produce_lines(f, producer, **kwargs)  # type: ignore[arg-type]
