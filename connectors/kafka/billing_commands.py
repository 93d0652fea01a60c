"""Operator requests to the rate stage, sent to every partition of ``billing.commands``."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from confluent_kafka import Producer

from connectors.kafka import topics
from streams.domain.errors import StackError
from streams.settings import Settings
from streams.wire.records import BILLING_COMMANDS


def request_close(settings: Settings, period: str) -> None:
    """Ask the rate stage to close every billing period starting in ``period`` (YYYY-MM).

    One copy per partition: each partition's book closes its own customers' periods.
    """
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", period):
        raise ValueError(f"period must be YYYY-MM, got {period!r}")
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "acks": "all"})
    command = BILLING_COMMANDS.encode(
        {
            "command": "close_period",
            "period": period,
            "customer": None,
            "requested_at": datetime.now(UTC),
        }
    )
    name = topics.topic_name(settings, topics.BILLING_COMMANDS)
    for partition in range(settings.usage_partitions):
        producer.produce(name, value=command, partition=partition)
    if producer.flush(30):
        raise StackError(f"could not deliver the close request to {name}")
