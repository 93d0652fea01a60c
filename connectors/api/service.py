"""``railyard api``: the long-running process serving the API (``docs/api.md``).

One uvicorn server on one event loop; a thread polls the Kafka client for delivery
reports; the catalog in force is followed from the ``catalog`` topic; usage queries go
through ``connectors.clickhouse.analyst`` (to the sink when it owns the embedded store).
SIGTERM stops accepting, lets requests awaiting their acknowledgement finish, and ends
within ``SHUTDOWN_GRACE_S`` whatever the broker does.
"""

from __future__ import annotations

import logging
import signal
import socket
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import uvicorn
from fastapi import FastAPI

from connectors.api.app import ApiContext, build_app
from connectors.api.keys import find
from connectors.api.keystore import KeyFile, key_file
from connectors.api.publisher import ACK_TIMEOUT_MS, AckPublisher
from connectors.clickhouse import analyst
from connectors.console.router import console_router
from connectors.files import load_catalog
from connectors.kafka.catalog_feed import CatalogFeed
from connectors.kafka.producer import UsageProducer
from connectors.metrics import serve as serve_metrics
from connectors.processes import arm_shutdown_deadline
from streams.domain.catalog import Catalog
from streams.domain.errors import ConfigError
from streams.settings import Settings

log = logging.getLogger("railyard.api")
CATALOG_WAIT_S = 15.0
"""How long start-up waits for the ``catalog`` topic; without one, ``RAILYARD_CATALOG``'s
meters judge events until a catalog is applied."""


def port_file(settings: Settings) -> Any:
    return settings.run_dir / "api.port"


def store_query(settings: Settings) -> Callable[[str], list[list[object]]]:
    """Rows of a read-only query; never opens an embedded store no sink owns (chDB
    allows one process, and the sink must be able to start)."""

    def run(sql: str) -> list[list[object]]:
        return analyst.query(settings, sql, open_store=False).rows

    return run


def run_api(settings: Settings, clock: Callable[[], datetime]) -> None:
    settings.validate()
    # A request is already a batch, and its client waits for the ack: no linger.
    producer = UsageProducer(
        settings, extra_config={"message.timeout.ms": ACK_TIMEOUT_MS, "linger.ms": 1}
    )
    publisher = AckPublisher(producer, settings.api_max_inflight).start()
    feed = CatalogFeed(settings).start()
    fallback = load_catalog(settings.catalog)
    try:  # judge events by the catalog in force from the first request
        feed.wait(CATALOG_WAIT_S)
    except ConfigError:
        log.warning("no catalog in force yet: judging events by %s", settings.catalog)

    def catalog() -> Catalog | None:
        return feed.current or fallback

    ctx = ApiContext(
        settings, publisher, KeyFile(key_file(settings)), catalog, store_query(settings), clock
    )
    app = build_app(ctx)

    # The console (docs/console.md) in the same process: operators sign in with an API key
    # that may send any source (a key limited to some producers' sources is not an operator's).
    def operator(presented: str) -> bool:
        found = find(ctx.key_file.keys(), presented)
        return found is not None and found.allowed_sources is None

    app.include_router(console_router(settings, operator, clock))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> Any:
        arm_shutdown_deadline()  # after uvicorn installed its handlers: both are called
        yield

    app.router.lifespan_context = lifespan
    sock = socket.socket(socket.AF_INET6 if ":" in settings.api_host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.api_host, settings.api_port))
    port = sock.getsockname()[1]
    path = port_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(str(port))
    serve_metrics(settings, "api")
    config = uvicorn.Config(
        app, log_level="warning", timeout_graceful_shutdown=5, access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    # uvicorn re-raises the signal it stopped on once it has: let that end us quietly.
    signal.signal(signal.SIGTERM, lambda *_: None)
    log.info("API on http://%s:%d/api/v1 (docs: /docs)", settings.api_host, port)
    started = time.monotonic()
    try:
        server.run(sockets=[sock])
    finally:
        feed.stop()
        publisher.stop()
        producer.close(5)
        path.unlink(missing_ok=True)
        log.info("stopped after %.0f s", time.monotonic() - started)
