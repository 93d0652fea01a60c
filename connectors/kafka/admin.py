"""Topic creation and broker readiness, through confluent_kafka's AdminClient.

Railyard never relies on broker auto-creation (the local broker disables it): every
topic in :func:`connectors.kafka.topics.topic_specs` is created here, explicitly, with
its partition count and configs, and an existing topic whose retention or cleanup policy
drifted (an operator's edit, a broker default) is put back to its spec.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource
from confluent_kafka.cimpl import NewTopic

from connectors.kafka.topics import TopicSpec, topic_specs
from streams.domain.errors import StackError
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


@dataclass(frozen=True)
class ConfigChange:
    """A topic config put back to its spec."""

    topic: str
    key: str
    was: str | None
    now: str


@dataclass(frozen=True)
class PartitionShortfall:
    """A topic with fewer partitions than its spec: reported, never fixed automatically
    (adding partitions moves keys, and with them customers, between partitions)."""

    topic: str
    partitions: int
    declared: int

    def __str__(self) -> str:
        return (
            f"{self.topic} has {self.partitions} partition(s), {self.declared} declared:"
            " add them before the first event (kafka-topics --alter --partitions)"
            " or set RAILYARD_USAGE_PARTITIONS to match"
        )


@dataclass(frozen=True)
class TopicsReport:
    """What :func:`ensure_topics` did and found."""

    created: list[str] = field(default_factory=list)
    altered: list[ConfigChange] = field(default_factory=list)
    short: list[PartitionShortfall] = field(default_factory=list)


def create_topics(
    settings: Settings, specs: Iterable[TopicSpec] | None = None, timeout: float = 30.0
) -> list[str]:
    """:func:`ensure_topics`, returning the topics that did not exist before.

    A partition shortfall is logged as a warning here; ``railyard topics create`` fails on it.
    """
    report = ensure_topics(settings, specs, timeout)
    for shortfall in report.short:
        log.warning("%s", shortfall)
    return report.created


def ensure_topics(
    settings: Settings, specs: Iterable[TopicSpec] | None = None, timeout: float = 30.0
) -> TopicsReport:
    """Create every declared topic that is missing; put back the configs of the others.

    An existing topic whose config (cleanup policy, retention, ...) differs from its spec
    is altered to the spec, key by key (incremental alter, so configs the spec does not
    name are left alone), and each change is logged. A topic with fewer partitions than
    declared is reported in :attr:`TopicsReport.short`. Any failure is raised as a
    StackError naming every topic that failed.
    """
    wanted = list(topic_specs(settings) if specs is None else specs)
    if not wanted:
        return TopicsReport()
    client = admin_client(settings.kafka_bootstrap)
    created = _create_missing(client, settings, wanted, timeout)
    partitions = _visible(client, [s.name for s in wanted], timeout)
    existing = [s for s in wanted if s.name not in created]
    short = [
        PartitionShortfall(s.name, partitions[s.name], s.partitions)
        for s in existing
        if partitions[s.name] < s.partitions
    ]
    altered = _config_drift(client, existing, timeout)
    if altered:
        _alter(client, altered, timeout)
        for change in altered:
            log.warning(
                "topic %s: %s was %s, set back to %s (its spec in connectors/kafka/topics.py)",
                change.topic,
                change.key,
                change.was,
                change.now,
            )
    return TopicsReport(created, altered, short)


def _create_missing(
    client: AdminClient, settings: Settings, wanted: list[TopicSpec], timeout: float
) -> list[str]:
    new = [
        NewTopic(
            s.name,
            num_partitions=s.partitions,
            replication_factor=settings.replication_factor,
            config=dict(s.config),
        )
        for s in wanted
    ]
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


def _visible(client: AdminClient, names: list[str], timeout: float) -> dict[str, int]:
    """Partition counts of ``names`` once the broker's metadata shows every one of them.

    A topic just created (here, or by another process) can take a moment to appear there,
    and describing its configs fails until it does.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            metadata = client.list_topics(timeout=max(0.1, deadline - time.monotonic()))
        except KafkaException as exc:
            raise StackError(f"could not list topics: {exc}") from exc
        found = {n: len(metadata.topics[n].partitions) for n in names if n in metadata.topics}
        if len(found) == len(names) and all(found.values()):
            return found
        if time.monotonic() >= deadline:
            missing = sorted(set(names) - set(found))
            raise StackError(f"topics not visible after {timeout:.0f}s: {', '.join(missing)}")
        time.sleep(0.05)


def config_drift(
    settings: Settings, specs: Iterable[TopicSpec], timeout: float = 30.0
) -> list[ConfigChange]:
    """How the configs of the existing topics among ``specs`` differ from them (nothing is
    changed); topics missing from the broker are skipped."""
    client = admin_client(settings.kafka_bootstrap)
    on_broker = set(list_topics(settings.kafka_bootstrap, timeout))
    return _config_drift(client, [s for s in specs if s.name in on_broker], timeout)


def _config_drift(
    client: AdminClient, specs: list[TopicSpec], timeout: float
) -> list[ConfigChange]:
    """Every config key whose value on the broker differs from the spec's."""
    if not specs:
        return []
    resources = {s.name: ConfigResource(ConfigResource.Type.TOPIC, s.name) for s in specs}
    futures = client.describe_configs(list(resources.values()), request_timeout=timeout)
    changes: list[ConfigChange] = []
    problems: list[str] = []
    for spec in specs:
        try:
            entries = futures[resources[spec.name]].result(timeout)
        except KafkaException as exc:
            problems.append(f"{spec.name}: {exc.args[0].str() if exc.args else exc}")
            continue
        for key, value in spec.config.items():
            entry = entries.get(key)
            current = entry.value if entry is not None else None
            if current != value:
                changes.append(ConfigChange(spec.name, key, current, value))
    if problems:
        raise StackError("could not describe topic configs:\n  - " + "\n  - ".join(problems))
    return changes


def _alter(client: AdminClient, changes: list[ConfigChange], timeout: float) -> None:
    by_topic: dict[str, list[ConfigEntry]] = {}
    for c in changes:
        entry = ConfigEntry(c.key, c.now, incremental_operation=AlterConfigOpType.SET)
        by_topic.setdefault(c.topic, []).append(entry)
    resources = [
        ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=entries)
        for topic, entries in by_topic.items()
    ]
    futures = client.incremental_alter_configs(resources, request_timeout=timeout)
    problems: list[str] = []
    for resource, future in futures.items():
        try:
            future.result(timeout)
        except KafkaException as exc:
            problems.append(f"{resource.name}: {exc.args[0].str() if exc.args else exc}")
    if problems:
        raise StackError("could not alter topic configs:\n  - " + "\n  - ".join(problems))


def group_lag(settings: Settings, group: str, topic_names: Iterable[str]) -> int:
    """Records on ``topic_names`` that consumer group ``group`` has not committed yet.

    A partition the group never committed counts from its start: not read is not done.
    """
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
        }
    )
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
