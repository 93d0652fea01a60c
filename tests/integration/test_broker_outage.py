"""With the broker gone: one clear warning, not a line per retry, a metric counting the
failed connections, and SIGTERM ends the worker and the sink within seconds (issue 17).
A private broker, so the session's stays."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from connectors.files import load_catalog
from connectors.kafka.catalog_feed import publish_catalog
from connectors.processes import SHUTDOWN_GRACE_S
from tests.fixtures.kafka import start_broker, stop_broker
from tests.integration.harness import Pipeline, free_port
from tests.integration.test_metrics import scrape

pytestmark = pytest.mark.integration

OUTAGE_S = 20.0


def test_an_outage_is_said_once_and_sigterm_still_means_seconds(tmp_path: Path) -> None:
    broker, base = start_broker(tmp_path / "kafka")
    home = tmp_path / "home"
    settings = base.with_(
        home=home, clickhouse_dsn=f"chdb://{home / 'clickhouse'}", query_port=free_port()
    )
    publish_catalog(settings, load_catalog(settings.catalog))
    pipeline = Pipeline(settings)
    try:
        pipeline.start("sink", "worker")
        pipeline.wait_for(
            lambda: "catalog" in pipeline.procs["worker"].log_tail(200), what="the worker"
        )
        time.sleep(5)  # both consuming
        before = {n: len(p.log_path.read_text().splitlines()) for n, p in pipeline.procs.items()}
        stop_broker(broker)
        time.sleep(OUTAGE_S)
        pipeline.check_alive()  # an outage is not a crash
        for name, proc in pipeline.procs.items():
            during = proc.log_path.read_text().splitlines()[before[name] :]
            warnings = [line for line in during if "broker unreachable" in line]
            assert warnings, f"{name} said nothing of the outage:\n" + "\n".join(during[-20:])
            assert len(during) < 60, f"{name}: {len(during)} lines in {OUTAGE_S:.0f} s"
            # ... and a metric that counts every retry the log held back
            failures = scrape(settings, name).get(("railyard_broker_connection_failures_total", ()))
            assert failures is not None and failures >= len(warnings), (name, failures)
        started = time.monotonic()
        for proc in pipeline.procs.values():
            proc.popen.terminate()
        for name, proc in pipeline.procs.items():
            proc.popen.wait(timeout=SHUTDOWN_GRACE_S + 10)
            assert proc.popen.returncode is not None, name
        assert time.monotonic() - started < SHUTDOWN_GRACE_S + 10
    finally:
        pipeline.stop()
        broker.down()
