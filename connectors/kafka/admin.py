"""Topic creation and broker readiness, through confluent_kafka's AdminClient.

Railyard never relies on broker auto-creation (the local broker disables it): every
topic in :func:`connectors.kafka.topics.topic_specs` is created here, explicitly, with
its partition count and configs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from connectors.kafka.topics import TopicSpec, topic_specs
from streams.errors import StackError
from streams.settings import Settings

log = logging.getLogger(__name__)


def admin_client(bootstrap: str, *, quiet: bool = False) -> AdminClient:
    """An AdminClient that retries connections fast; ``quiet`` mutes librdkafka's logs.

    librdkafka backs off reconnects up to 10 s by default, which would add seconds to
    every broker start we wait for; and while a broker is still starting each refused
    connection is an expected event, not an error worth a line on stderr.
    """
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "reconnect.backoff.ms": 50,
        "reconnect.backoff.max.ms": 500,
        "logger": log,
    }
    if quiet:
        config["log_level"] = 0
    return AdminClient(config)


def wait_for_broker(
    bootstrap: str, timeout: float, *, alive: Callable[[], bool] | None = None
) -> None:
    """Block until a broker answers a metadata request; StackError after ``timeout`` s.

    ``alive`` is asked between attempts so a broker process that dies while starting
    fails fast instead of after the whole timeout.
    """
    client = admin_client(bootstrap, quiet=True)
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while True:
        if alive is not None and not alive():
            raise StackError(f"the broker process exited before answering on {bootstrap}")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise StackError(f"no broker answered on {bootstrap} within {timeout:.0f}s ({last})")
        try:
            client.list_topics(timeout=min(1.0, remaining))
            return
        except KafkaException as exc:
            last = str(exc.args[0].str() if exc.args else exc)
            time.sleep(0.1)


def count_topics(bootstrap: str, timeout: float = 5.0) -> int | None:
    """Topics other than Kafka's internal ``__*`` ones; None if the broker does not answer."""
    try:
        metadata = admin_client(bootstrap, quiet=True).list_topics(timeout=timeout)
    except KafkaException:
        return None
    return sum(1 for name in metadata.topics if not name.startswith("__"))


def list_topics(bootstrap: str, timeout: float = 10.0) -> dict[str, int]:
    """Partition count of every non-internal topic, by name."""
    try:
        metadata = admin_client(bootstrap).list_topics(timeout=timeout)
    except KafkaException as exc:
        raise StackError(f"could not list topics on {bootstrap}: {exc}") from exc
    return {
        name: len(topic.partitions)
        for name, topic in sorted(metadata.topics.items())
        if not name.startswith("__")
    }


def create_topics(
    settings: Settings, specs: Iterable[TopicSpec] | None = None, timeout: float = 30.0
) -> list[str]:
    """Create every declared topic; returns the ones that did not exist before.

    Idempotent: a topic that already exists is left as it is (its partition count and
    configs are not compared). Any other failure is raised, naming every topic that failed.
    """
    wanted = list(topic_specs(settings) if specs is None else specs)
    if not wanted:
        return []
    new = [
        NewTopic(
            s.name,
            num_partitions=s.partitions,
            replication_factor=settings.replication_factor,
            config=dict(s.config),
        )
        for s in wanted
    ]
    client = admin_client(settings.kafka_bootstrap)
    # operation_timeout: the broker answers once the topics exist, so producers can use them.
    futures = client.create_topics(new, operation_timeout=timeout, request_timeout=timeout)
    created: list[str] = []
    problems: list[str] = []
    for spec in wanted:
        try:
            futures[spec.name].result()
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if error.code() != KafkaError.TOPIC_ALREADY_EXISTS:
                problems.append(f"{spec.name}: {error.str()}")
            continue
        created.append(spec.name)
    if problems:
        raise StackError("could not create topics:\n  - " + "\n  - ".join(problems))
    return created


def group_lag(settings: Settings, group: str, topic_names: Iterable[str]) -> int:
    """Records on ``topic_names`` that consumer group ``group`` has not committed yet.

    A partition the group never committed counts from its start: not read is not done.
    """
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": group,
                         "enable.auto.commit": False})  # fmt: skip
    try:
        metadata = consumer.list_topics(timeout=10)
        parts = [
            TopicPartition(name, p)
            for name in topic_names
            if name in metadata.topics
            for p in metadata.topics[name].partitions
        ]
        lag = 0
        for tp in consumer.committed(parts, timeout=10):
            low, high = consumer.get_watermark_offsets(tp, timeout=10)
            done = tp.offset if tp.offset >= 0 else low
            lag += max(0, high - done)
        return lag
    finally:
        consumer.close()
