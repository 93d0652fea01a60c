"""``railyard sink``: the long-running sink process (migrations, inserts, analyst queries)."""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any

from connectors.clickhouse.analyst import query_port_file
from connectors.clickhouse.clickhouse_http import ClickHouseHttp
from connectors.clickhouse.client import connect
from connectors.clickhouse.http_auth import parse_users
from connectors.clickhouse.migrate import prepare_store
from connectors.clickhouse.query_server import QueryServer
from connectors.clickhouse.sink import ClickHouseSink, SinkStats
from connectors.metrics import serve as serve_metrics
from connectors.processes import arm_shutdown_deadline
from streams.settings import Settings

log = logging.getLogger("railyard.sink")


def run_sink(settings: Settings, **sink_options: Any) -> SinkStats:
    settings.validate()
    # Claim the store before opening it, so `railyard sql` never opens it beside us.
    pid_file = settings.run_dir / "sink.pid"
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(str(os.getpid()))
    query_port_file(settings).unlink(missing_ok=True)  # a killed predecessor's
    client = connect(settings)
    applied = prepare_store(client)
    if applied:
        log.info("applied migrations %s", applied)
    lock = threading.Lock()
    server: QueryServer | None = None
    if settings.embedded_clickhouse:
        users = parse_users(settings.analyst_users.get_secret_value())
        clickhouse = ClickHouseHttp(str(settings.embedded_store), lock, users)
        server = QueryServer(
            client,
            lock,
            settings.query_port,
            query_port_file(settings),
            clickhouse=clickhouse,
            host=settings.query_host,
        )
        server.start()
        log.info(
            "answering analysts' queries on %s:%d (POST /query, and ClickHouse's HTTP"
            " interface for users %s)",
            settings.query_host,
            server.port,
            ", ".join(sorted(users)),
        )
    sink = ClickHouseSink(settings, client, lock=lock, **sink_options)
    serve_metrics(settings, "sink")

    def stop(signum: int, frame: Any) -> None:
        log.info("signal %d: flushing and stopping", signum)
        sink.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    arm_shutdown_deadline()
    try:
        sink.run()
    finally:
        if server is not None:
            server.stop()
        pid_file.unlink(missing_ok=True)
    return sink.stats
