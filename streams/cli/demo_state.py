"""Every ``railyard demo`` starts from fresh state under ``RAILYARD_HOME``.

A second run on the same home would otherwise meet the first run's broker data
and store: the same seed makes the same events, every one a duplicate, and the
catalog already owns the key the demo shows being parked. So the demo stops what
an earlier ``railyard demo --keep-running`` left running (worker and sink, then the
broker, in the order data flows) and deletes the broker's data, the embedded store,
pid files, sandbox peers' files and logs, all under ``RAILYARD_HOME`` and nothing
outside it. Kafka's jars and the JVM's class-data archive live in
``~/.cache/railyard`` and are kept.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from connectors.clickhouse.analyst import sink_alive
from connectors.kafka.stack import LocalBroker
from connectors.processes import stop_recorded
from streams.domain.errors import RailyardError
from streams.settings import Settings

DEMO_PROCESSES = ["api", "worker", "sink"]
"""What the demo spawns, in the order it stops them: the API's events reach the worker, the
worker's outputs reach the sink."""


@dataclass(frozen=True)
class FreshStart:
    """What :func:`start_fresh` found: processes it stopped, directories it deleted."""

    home: Path
    stopped: tuple[str, ...]
    cleared: tuple[Path, ...]

    def describe(self) -> str:
        if not self.stopped and not self.cleared:
            return f"fresh state: nothing from an earlier run under {self.home}"
        parts = []
        if self.stopped:
            parts.append(f"stopped the {', '.join(self.stopped)} an earlier demo left running")
        if self.cleared:
            names = ", ".join(str(p.relative_to(self.home)) for p in self.cleared)
            parts.append(f"deleted its {names} under {self.home}")
        return "fresh state (every run starts from scratch, nothing is reused): " + "; ".join(parts)


def store_dir(settings: Settings) -> Path:
    """The embedded store's directory (``chdb://<dir>``)."""
    if settings.embedded_store is None:
        raise RailyardError(
            "the demo runs on the embedded ClickHouse under RAILYARD_HOME, not on "
            f"{settings.redacted_dsn}: unset RAILYARD_CLICKHOUSE_DSN"
        )
    return settings.embedded_store


def start_fresh(settings: Settings) -> FreshStart:
    """Stop an earlier demo's processes and delete its state under ``settings.home``.

    Raises :class:`RailyardError` before deleting anything when the store lies outside
    ``RAILYARD_HOME`` and holds data, or when a sink no demo started (``railyard sink``
    run by hand, or by a demo older than these records) still owns the store.
    """
    home = settings.home.resolve()
    store = store_dir(settings).resolve()
    if not store.is_relative_to(home) and store.exists() and any(store.iterdir()):
        raise RailyardError(
            f"the demo starts from an empty store and deletes only under RAILYARD_HOME "
            f"({home}); {store} is outside it and holds data: point RAILYARD_CLICKHOUSE_DSN "
            "at an empty directory, or unset it"
        )
    stopped = stop_recorded(settings.run_dir, DEMO_PROCESSES)
    if sink_alive(settings):
        pid = (settings.run_dir / "sink.pid").read_text().strip()
        raise RailyardError(
            f"a sink the demo did not start (pid {pid}) owns the store {store}: stop it first"
        )
    broker = LocalBroker(settings)
    if broker.pid() is not None:
        broker.down()
        stopped.append("broker")
    cleared = []
    for path in (settings.kafka_dir, store, settings.run_dir, home / "sandbox", home / "logs"):
        path = path.resolve()
        if path.exists() and path.is_relative_to(home):
            shutil.rmtree(path)
            cleared.append(path)
    return FreshStart(home, tuple(stopped), tuple(cleared))
