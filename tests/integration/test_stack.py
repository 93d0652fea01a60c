"""The local broker against the real thing: a Kafka 4 KRaft process on free ports.

One broker serves the module; the restart test runs last and leaves it running.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource
from typer.testing import CliRunner

from connectors.kafka.admin import create_topics, list_topics
from connectors.kafka.stack import LocalBroker, PortInUseError
from connectors.kafka.topics import USAGE, USAGE_DLQ, topic_name, topic_specs
from streams.cli.stack import stack_app, topics_app
from streams.domain.errors import StackError
from streams.settings import Settings
from tests.fixtures.kafka import free_ports, start_broker, stop_broker

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalBroker, Settings]]:
    started = time.monotonic()
    pair = start_broker(tmp_path_factory.mktemp("stack"), topic_prefix="st.")
    print(f"\nbroker started and topics created in {time.monotonic() - started:.1f}s")
    try:
        yield pair
    finally:
        stop_broker(pair[0])


def produce(settings: Settings, topic: str, key: bytes, value: bytes) -> None:
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "acks": "all"})
    producer.produce(topic, value=value, key=key)
    assert producer.flush(30) == 0, "message not delivered"


def consumes(
    settings: Settings, topic: str, record: tuple[bytes, bytes], *, group: bool = True
) -> bool:
    """Whether a consumer reading ``topic`` from the start meets ``record``.

    ``group`` subscribes through a fresh consumer group (so the group coordinator and
    ``__consumer_offsets`` must work); otherwise partitions are assigned directly.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"test-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    if group:
        consumer.subscribe([topic])
    else:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    deadline = time.monotonic() + 30.0
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                raise KafkaException(msg.error())
            if (msg.key(), msg.value()) == record:
                return True
    finally:
        consumer.close()
    return False


def test_every_declared_topic_exists_with_its_partitions(
    broker: tuple[LocalBroker, Settings],
) -> None:
    _, settings = broker
    existing = list_topics(settings.kafka_bootstrap)
    for spec in topic_specs(settings):
        assert spec.name.startswith("st.")
        assert existing.get(spec.name) == spec.partitions, spec.name


def test_topic_configs_are_applied(broker: tuple[LocalBroker, Settings]) -> None:
    _, settings = broker
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    specs = [s for s in topic_specs(settings) if s.config]
    assert specs, "topic_specs declares no configs to check"
    resources = [ConfigResource(ConfigResource.Type.TOPIC, s.name) for s in specs]
    described = admin.describe_configs(resources)
    for spec, resource in zip(specs, resources, strict=True):
        entries = described[resource].result(30)
        for key, value in spec.config.items():
            assert entries[key].value == value, f"{spec.name} {key}"


def test_create_topics_again_creates_nothing(broker: tuple[LocalBroker, Settings]) -> None:
    _, settings = broker
    assert create_topics(settings) == []


def test_one_message_goes_through(broker: tuple[LocalBroker, Settings]) -> None:
    _, settings = broker
    topic = topic_name(settings, USAGE)
    produce(settings, topic, b"subject-1", b"hello")
    assert consumes(settings, topic, (b"subject-1", b"hello"))


def test_auto_creation_is_off(broker: tuple[LocalBroker, Settings]) -> None:
    _, settings = broker
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "message.timeout.ms": 1000})
    producer.produce("st.never-declared", value=b"x")
    assert producer.flush(10) == 0
    assert "st.never-declared" not in list_topics(settings.kafka_bootstrap)


def test_status_describes_the_running_broker(broker: tuple[LocalBroker, Settings]) -> None:
    local, settings = broker
    status = local.status()
    assert status.running
    assert status.pid is not None and psutil.pid_exists(status.pid)
    assert int(local.pid_file.read_text()) == status.pid
    assert status.bootstrap == settings.kafka_bootstrap
    assert status.data_dir == settings.kafka_dir / "data"
    assert (status.data_dir / "meta.properties").exists()
    assert status.topics is not None and status.topics >= len(topic_specs(settings))
    assert (status.log_dir / "server.log").stat().st_size > 0, "the broker logs nothing"


def test_up_when_running_keeps_the_same_process(broker: tuple[LocalBroker, Settings]) -> None:
    local, settings = broker
    pid = local.status().pid
    # A second handle on the same home, as a second `railyard stack up` would have.
    assert LocalBroker(settings).up(10).pid == pid


def test_cli_reports_the_running_broker_and_its_topics(
    broker: tuple[LocalBroker, Settings],
) -> None:
    local, settings = broker
    runner, env = CliRunner(), settings.to_env()
    up = runner.invoke(stack_app, ["up"], env=env)
    assert up.exit_code == 0, up.output
    assert "running" in up.output and str(local.status().pid) in up.output
    status = runner.invoke(stack_app, ["status"], env=env)
    assert status.exit_code == 0 and settings.kafka_bootstrap in status.output
    created = runner.invoke(topics_app, ["create"], env=env)
    assert created.exit_code == 0 and "created 0 topic(s)" in created.output
    listed = runner.invoke(topics_app, ["list"], env=env)
    assert listed.exit_code == 0, listed.output
    for spec in topic_specs(settings):
        assert spec.name in listed.output


def test_a_port_in_use_is_refused_before_starting(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        (controller,) = free_ports(1)
        settings = Settings(
            home=tmp_path, kafka_bootstrap=f"127.0.0.1:{port}", kafka_controller_port=controller
        )
        with pytest.raises(PortInUseError, match=str(port)):
            LocalBroker(settings).up(10)
    assert not (settings.run_dir / "kafka.pid").exists()


def test_a_broker_dying_at_start_is_reported_with_its_log(tmp_path: Path) -> None:
    port, controller = free_ports(2)
    settings = Settings(
        home=tmp_path, kafka_bootstrap=f"127.0.0.1:{port}", kafka_controller_port=controller
    )
    local = LocalBroker(settings, jvm_opts=["-XX:+NoSuchRailyardOption"])
    with pytest.raises(StackError, match="NoSuchRailyardOption"):
        local.up(30)
    assert local.pid() is None


def test_down_stops_it_and_up_keeps_the_data(broker: tuple[LocalBroker, Settings]) -> None:
    local, settings = broker
    topic = topic_name(settings, USAGE_DLQ)
    produce(settings, topic, b"k", b"kept across restarts")
    meta = (local.data_dir / "meta.properties").read_text()
    pid = local.status().pid
    assert pid is not None

    assert local.down(30)
    assert not psutil.pid_exists(pid)
    assert not local.pid_file.exists()
    stopped = local.status()
    assert not stopped.running and stopped.pid is None and stopped.topics is None
    assert not local.down(5), "down when already down is a no-op"

    restarted = local.up(120)
    assert restarted.running and restarted.pid != pid
    assert (local.data_dir / "meta.properties").read_text() == meta, "storage was re-formatted"
    assert list_topics(settings.kafka_bootstrap).get(topic) == 1
    assert consumes(settings, topic, (b"k", b"kept across restarts"), group=False)
