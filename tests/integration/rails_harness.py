"""Running the rail runner in a test: in a thread of the test process, with fast retries."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from connectors.kafka import topics
from connectors.rails.config import RailConfig
from connectors.rails.registry import create
from connectors.rails.runner import RailRunner
from connectors.rails.sandbox import RailPeer
from streams.settings import Settings
from streams.wire.records import INVOICE_DEAD_LETTERS, INVOICE_STATUS
from tests.integration.harness import read_topic

FAST_RETRIES = {
    "retry_base": "50ms",
    "retry_cap": "200ms",
    "retry_max_attempts": "6",
    "retry_max_elapsed": "60s",
}


class InProcess:
    """The real runner in a thread of the test process."""

    def __init__(self, settings: Settings, peer: RailPeer, **config: str) -> None:
        values = {**peer.config().values, **FAST_RETRIES, **config}
        rail_config = RailConfig(peer.rail, values)
        self.runner = RailRunner(
            settings, create(peer.rail, rail_config), rail_config, rand=lambda: 1.0
        )
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.runner.run()
        except BaseException as exc:  # surfaced by stop()
            self.error = exc

    def stop(self) -> None:
        self.runner.stop()
        self.thread.join(60)
        assert not self.thread.is_alive(), "the runner did not stop"
        if self.error is not None:
            raise self.error


def start_runners(settings: Settings) -> Iterator[Callable[..., InProcess]]:
    """Body of a ``running`` fixture: start runners on demand, stop them all afterwards."""
    started: list[InProcess] = []

    def start(peer: RailPeer, **config: str) -> InProcess:
        started.append(InProcess(settings, peer, **config))
        return started[-1]

    yield start
    for r in started:
        r.stop()


def statuses(settings: Settings) -> list[dict[str, Any]]:
    topic = topics.topic_name(settings, topics.INVOICES_STATUS)
    return [INVOICE_STATUS.decode(v) for _, v in read_topic(settings, topic)]


def dead_letters(settings: Settings) -> list[dict[str, Any]]:
    topic = topics.topic_name(settings, topics.INVOICES_DLQ)
    return [INVOICE_DEAD_LETTERS.decode(v) for _, v in read_topic(settings, topic)]


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def has(settings: Settings, invoice_id: str, status: str) -> bool:
    return any(s["invoice_id"] == invoice_id and s["status"] == status for s in statuses(settings))
