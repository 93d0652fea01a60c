"""``railyard topics create`` against the real broker: a topic's retention or cleanup
policy changed by hand is put back to its spec, and a missing partition is reported."""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource
from confluent_kafka.cimpl import NewTopic
from rich.console import Console
from typer.testing import CliRunner

from connectors.kafka import topics
from connectors.kafka.admin import ConfigChange, create_topics, ensure_topics
from connectors.kafka.topics import topic_name, topic_specs
from streams.cli import stack as cli_stack
from streams.cli.stack import topics_app
from streams.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def fresh(kafka: Settings, tmp_path: Path) -> Settings:
    """A namespace of its own, topics not created yet."""
    return kafka.with_(home=tmp_path, topic_prefix=f"p{uuid.uuid4().hex[:8]}.")


def admin(settings: Settings) -> AdminClient:
    return AdminClient({"bootstrap.servers": settings.kafka_bootstrap})


def set_by_hand(settings: Settings, topic: str, **config: str) -> None:
    entries = [
        ConfigEntry(k.replace("_", "."), v, incremental_operation=AlterConfigOpType.SET)
        for k, v in config.items()
    ]
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=entries)
    client = admin(settings)  # held until the futures resolve: a freed client cancels them
    for future in client.incremental_alter_configs([resource]).values():
        future.result(30)


def configs(settings: Settings, topic: str) -> dict[str, str]:
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    client = admin(settings)
    entries = client.describe_configs([resource])[resource].result(30)
    return {k: e.value for k, e in entries.items()}


def eventually(settings: Settings, topic: str, key: str, value: str) -> None:
    """A config change reaches the broker that answers describe a moment after the
    controller accepted it."""
    deadline = time.monotonic() + 30
    while (seen := configs(settings, topic).get(key)) != value:
        assert time.monotonic() < deadline, f"{topic} {key} is {seen}, not {value}"
        time.sleep(0.05)


def test_a_retention_changed_by_hand_is_put_back(
    fresh: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    first = ensure_topics(fresh)
    assert sorted(first.created) == sorted(s.name for s in topic_specs(fresh))
    assert first.altered == [] and first.short == []

    windows = topic_name(fresh, topics.USAGE_WINDOWS)
    book = topic_name(fresh, topics.BILLING_BOOK)
    spec_windows = {s.name: s for s in topic_specs(fresh)}[windows].config
    set_by_hand(fresh, windows, retention_ms="1000", segment_ms="1000")
    set_by_hand(fresh, book, cleanup_policy="delete")
    eventually(fresh, windows, "retention.ms", "1000")
    eventually(fresh, windows, "segment.ms", "1000")
    eventually(fresh, book, "cleanup.policy", "delete")

    with caplog.at_level(logging.WARNING, logger="connectors.kafka.admin"):
        again = ensure_topics(fresh)

    assert again.created == []
    assert sorted(again.altered, key=lambda c: (c.topic, c.key)) == [
        ConfigChange(book, "cleanup.policy", "delete", "compact"),
        ConfigChange(windows, "retention.ms", "1000", spec_windows["retention.ms"]),
        ConfigChange(windows, "segment.ms", "1000", spec_windows["segment.ms"]),
    ]
    eventually(fresh, windows, "retention.ms", spec_windows["retention.ms"])
    eventually(fresh, windows, "segment.ms", spec_windows["segment.ms"])
    eventually(fresh, book, "cleanup.policy", "compact")
    assert f"topic {windows}: retention.ms was 1000, set back to" in caplog.text
    assert ensure_topics(fresh).altered == []  # in line with the specs now: nothing to do


def test_fewer_partitions_than_declared_are_reported(
    fresh: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    late = topic_name(fresh, topics.USAGE_LATE)
    client = admin(fresh)
    client.create_topics([NewTopic(late, num_partitions=1, replication_factor=1)])[late].result(30)

    with caplog.at_level(logging.WARNING, logger="connectors.kafka.admin"):
        created = create_topics(fresh)

    assert late not in created
    assert f"{late} has 1 partition(s), {fresh.usage_partitions} declared" in caplog.text
    report = ensure_topics(fresh)
    assert [(s.topic, s.partitions) for s in report.short] == [(late, 1)]
    # Its retention and policy were put back all the same.
    eventually(fresh, late, "retention.ms", str(7 * 86_400_000))

    result = CliRunner().invoke(topics_app, ["create"], env=fresh.to_env())
    assert result.exit_code == 1
    assert "declared" in result.output and late in result.output


def test_topics_list_shows_policy_retention_why_and_drift(
    fresh: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli_stack, "console", Console(width=250))  # one line per row
    ensure_topics(fresh)
    invoices = topic_name(fresh, topics.INVOICES)
    set_by_hand(fresh, invoices, retention_ms=str(86_400_000))
    eventually(fresh, invoices, "retention.ms", str(86_400_000))

    result = CliRunner().invoke(topics_app, ["list"], env=fresh.to_env())
    assert result.exit_code == 0, result.output
    rows = {line.split()[1]: line for line in result.output.splitlines() if "│" in line[:2]}
    assert "1d (declared forever)" in rows[invoices]
    assert "the record of what was billed" in rows[invoices]
    book = rows[topic_name(fresh, topics.BILLING_BOOK)]
    assert "compact" in book and "forever" in book
    assert "7d" in rows[topic_name(fresh, topics.USAGE_WINDOWS)]

    result = CliRunner().invoke(topics_app, ["create"], env=fresh.to_env())
    assert result.exit_code == 0, result.output
    assert f"{invoices}: retention.ms 86400000 -> -1" in result.output
