"""Redrive: put dead-lettered invoices back on their rail's topic, once the cause is fixed.

``railyard rails redrive [--rail R] [--invoice ID]`` reads ``invoices.dlq`` from its
start, keeps the dead letters that match, and re-publishes each one's original
invoice bytes to ``invoices.<rail>`` (the rail the invoice names) keyed by its
customer, as the router does. The rail's connector then delivers it like any
other invoice. That is safe to repeat: the rail holds one document per
idempotency key, so a redriven invoice the rail already holds stays one document.

Per invoice only its latest dead letter counts; an invoice whose latest status
on ``invoices.status`` is ``delivered`` (redriven and delivered since) is skipped,
as is a record that never was an invoice (``undecodable``: its bytes would only
be dead-lettered again).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, Producer

from connectors.kafka import topics
from connectors.kafka.admin import create_topics
from connectors.kafka.consumed import value_of
from connectors.kafka.replay import read_partition
from streams.domain.errors import RailyardError
from streams.settings import Settings
from streams.wire.invoices import decode_invoice
from streams.wire.records import INVOICE_DEAD_LETTERS, INVOICE_STATUS


@dataclass(frozen=True)
class Redrive:
    """One dead letter and what a redrive does with it."""

    invoice_id: str | None
    number: str | None
    rail: str
    """The rail the invoice goes to (the one it names)."""
    reason: str
    error: str
    offset: int
    """Where the dead letter is on ``invoices.dlq``."""
    action: str
    """``redriven``, or why not: ``skipped: delivered since``, ``skipped: not an invoice``."""
    key: bytes = b""
    original: bytes = b""

    @property
    def redriven(self) -> bool:
        return self.action == "redriven"


def plan(
    letters: Iterable[tuple[int, dict[str, Any]]],
    latest_status: dict[str, str],
    *,
    rail: str | None = None,
    invoice: str | None = None,
) -> list[Redrive]:
    """What to redrive, from ``(offset, dead letter)`` pairs in log order (pure).

    ``rail`` keeps the letters of that rail (the rail that dead-lettered it, or the one
    the invoice names); ``invoice`` those whose invoice id or number it is.
    """
    latest: dict[str, Redrive] = {}
    out: list[Redrive] = []
    for offset, letter in letters:
        if invoice is not None and invoice not in (letter["invoice_id"], letter["number"]):
            continue
        try:
            decoded = decode_invoice(letter["original"])
        except Exception:  # undecodable: nothing to deliver
            decoded = None
        target = decoded.rail if decoded is not None else letter["rail"]
        if rail is not None and rail not in (letter["rail"], target):
            continue
        error = f"{letter['error_code'] or ''} {letter['error_message']}".strip()
        common = dict(
            invoice_id=letter["invoice_id"],
            number=letter["number"],
            rail=target,
            reason=letter["reason"],
            error=error,
            offset=offset,
        )
        if decoded is None:
            out.append(Redrive(**common, action="skipped: not an invoice"))
            continue
        action = (
            "skipped: delivered since"
            if latest_status.get(decoded.id) == "delivered"
            else "redriven"
        )
        latest[decoded.id] = Redrive(
            **common,
            action=action,
            key=decoded.customer.encode(),
            original=letter["original"],
        )
    return out + sorted(latest.values(), key=lambda r: r.offset)


def _partitions(settings: Settings, topic: str) -> list[int]:
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka_bootstrap, "group.id": "railyard-redrive"}
    )
    try:
        meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error is not None:
            return []
        return sorted(meta.partitions)
    finally:
        consumer.close()


def _read(settings: Settings, topic: str) -> Iterator[Message]:
    for partition in _partitions(settings, topic):
        yield from read_partition(settings.kafka_bootstrap, topic, partition)


def redrive(
    settings: Settings,
    *,
    rail: str | None = None,
    invoice: str | None = None,
    dry_run: bool = False,
) -> list[Redrive]:
    """Re-publish the matching dead letters (see :func:`plan`); returns every one considered.

    Returns once the broker acknowledged every re-published invoice; raises
    :class:`RailyardError` naming the failures otherwise.
    """
    dlq = topics.topic_name(settings, topics.INVOICES_DLQ)
    status_topic = topics.topic_name(settings, topics.INVOICES_STATUS)
    letters = [
        (msg.offset() or 0, INVOICE_DEAD_LETTERS.decode(value_of(msg)))
        for msg in _read(settings, dlq)
    ]
    latest_status: dict[str, str] = {}
    for msg in _read(settings, status_topic):
        step = INVOICE_STATUS.decode(value_of(msg))
        latest_status[step["invoice_id"]] = step["status"]
    planned = plan(letters, latest_status, rail=rail, invoice=invoice)
    todo = [r for r in planned if r.redriven]
    if dry_run or not todo:
        return planned
    create_topics(settings, topics.rail_topic_specs(settings, {r.rail for r in todo}))
    producer = Producer(
        {"bootstrap.servers": settings.kafka_bootstrap, "enable.idempotence": True, "acks": "all"}
    )
    errors: list[str] = []

    def acked(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            errors.append(str(err))

    for r in todo:
        target = topics.topic_name(settings, topics.rail_topic(r.rail))
        producer.produce(target, r.original, r.key, on_delivery=acked)
    left = producer.flush(30)
    if left or errors:
        raise RailyardError(
            f"redrive: {left} invoice(s) not acknowledged, errors: {'; '.join(errors) or 'none'}"
        )
    return planned
