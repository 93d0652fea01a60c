"""Helpers the integration tests share: run the pipeline's processes, read topics, wait."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from connectors.clickhouse.analyst import query
from connectors.processes import ManagedProcess, spawn
from streams.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def read_topic(settings: Settings, topic: str, timeout: float = 10.0) -> list[tuple[bytes, bytes]]:
    """Every (key, value) in the topic, read from the beginning to the high watermarks."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": "test-reader",
            "enable.auto.commit": False,
        }
    )
    try:
        meta = consumer.list_topics(topic, timeout=timeout)
        parts = list(meta.topics[topic].partitions)
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
            for p in parts
        }
        todo = {p for p, (lo, hi) in ends.items() if hi > lo}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in todo])
        out: list[tuple[bytes, bytes]] = []
        deadline = time.monotonic() + timeout
        while todo and time.monotonic() < deadline:
            for msg in consumer.consume(500, 0.5):
                if msg.error():
                    continue
                out.append((msg.key(), msg.value()))
                if msg.offset() >= ends[msg.partition()][1] - 1:
                    todo.discard(msg.partition())
        assert not todo, f"could not read all of {topic}"
        return out
    finally:
        consumer.close()


def scalar(settings: Settings, sql: str) -> object:
    return query(settings, sql).rows[0][0]


@dataclass
class Pipeline:
    """The worker and sink processes of one test, with crash controls."""

    settings: Settings
    procs: dict[str, ManagedProcess] = field(default_factory=dict)

    def start(self, *names: str) -> None:
        """Start processes; returns once the sink (if started) answers queries."""
        for name in names or ("sink", "worker"):
            if name in self.procs:
                self.procs.pop(name).stop()
            port_file = self.settings.run_dir / "sink.query-port"
            if name == "sink":
                port_file.unlink(missing_ok=True)  # left behind by a killed sink
            self.procs[name] = spawn(name, [name], self.settings)
            if name == "sink":
                self.wait_for(port_file.exists, timeout=60, what="the sink to be ready")

    def start_worker(self, name: str, settings: Settings) -> None:
        """A worker process called ``name`` with its own settings: stages split across
        processes, or several processes of one stage sharing its partitions."""
        if name in self.procs:
            self.procs.pop(name).stop()
        self.procs[name] = spawn(name, ["worker"], settings)

    def kill(self, *names: str) -> None:
        for name in names:
            self.procs.pop(name).kill()

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.stop()

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            assert proc.alive, f"{name} died:\n{proc.log_tail()}"

    def wait_for(
        self, predicate: Callable[[], bool], timeout: float = 120.0, what: str = ""
    ) -> None:
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                if predicate():
                    return
            except Exception as exc:  # the sink may still be starting
                last_error = exc
            time.sleep(0.5)
        logs = "\n".join(f"--- {n}\n{p.log_tail()}" for n, p in self.procs.items())
        raise AssertionError(f"timed out waiting for {what} (last error {last_error})\n{logs}")

    def count(self, sql: str) -> int:
        return int(scalar(self.settings, sql))  # type: ignore[call-overload]


def railyard(settings: Settings, *args: str) -> str:
    """``railyard ARGS`` as a user runs it against this test's stack; asserts exit 0."""
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", *args],
        env={**os.environ, **settings.to_env(), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout
