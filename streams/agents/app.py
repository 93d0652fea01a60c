"""The Faust application: one per worker process, built from :class:`Settings`.

Topics are created by ``railyard stack up`` / ``railyard topics create``, never by
Faust (``topic_allow_declare=False``), so partition counts stay under our control.
"""

from __future__ import annotations

import logging
from typing import Any

import faust

from streams.settings import Settings, Stage

log = logging.getLogger("railyard.worker")


def create_app(settings: Settings) -> faust.App:
    host, port = settings.kafka_bootstrap.split(",")[0].rsplit(":", 1)
    return faust.App(
        f"{settings.topic_prefix}{settings.worker_id}",
        broker=f"kafka://{host}:{port}",
        value_serializer="raw",
        key_serializer="raw",
        store="memory://",
        topic_allow_declare=False,
        topic_disable_leader=True,
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        # A killed worker's partitions move to a survivor after this, not after 60 s.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=2.0,
        stream_buffer_maxsize=2048,
        producer_linger_ms=5,
        producer_acks=-1,
        producer_max_request_size=6 * 1024 * 1024,  # a dead letter carries up to 1 MiB of original
        stream_wait_empty=True,
    )


def fail_fast(app: faust.App) -> None:
    """Any agent that crashes takes the worker down with it (exit code 70).

    Faust would restart the agent in place, past the batch it failed on (never acked,
    so its offsets could not be committed again): a supervisor (systemd, Kubernetes,
    the demo) restarts the whole worker instead, which re-reads from the committed
    offsets, so nothing is lost or skipped.
    """
    import os

    async def on_error(agent: Any, exc: BaseException) -> None:
        log.critical("agent %s crashed, stopping the worker: %r", agent.name, exc)
        logging.shutdown()
        os._exit(70)

    for agent in app.agents.values():
        agent._on_error = on_error


def build_worker_app(settings: Settings, wait_for_catalog_s: float | None = None) -> faust.App:
    """The app with every agent of the pipeline registered.

    Blocks until a catalog is in force (read from Kafka): meters, customers and
    windows all depend on it, and a new worker must rebuild it from Kafka alone.
    """
    from connectors.kafka.catalog_feed import CatalogFeed
    from streams.agents.ingest import register_ingest
    from streams.agents.rate import register_rate
    from streams.agents.route import register_route
    from streams.agents.runtime import process_clock
    from streams.agents.window import register_window

    feed = CatalogFeed(settings).start()
    log.info("waiting for the catalog on %s", feed.topic)
    catalog = feed.wait(wait_for_catalog_s)
    log.info(
        "catalog %s in force: %d meters, %d customers",
        catalog.version,
        len(catalog.meters),
        len(catalog.customers),
    )
    app = create_app(settings)
    stages = settings.stages
    if Stage.INGEST in stages:  # with "attribute", ingest attributes in the same pass
        if settings.clock_origin is not None:
            log.info("clock: starts at %s (RAILYARD_CLOCK_START)", settings.clock_origin)
        register_ingest(app, settings, feed, process_clock(settings.clock_origin))
    if Stage.WINDOW in stages:
        register_window(app, settings, feed)
    if Stage.RATE in stages:
        register_rate(app, settings, feed)
    if Stage.ROUTE in stages:
        register_route(app, settings)
    fail_fast(app)
    app.task(_arm_shutdown_deadline)
    serve_metrics(app, settings)
    return app


def serve_metrics(app: faust.App, settings: Settings) -> None:
    """The worker's Prometheus endpoint (``connectors/metrics.py``), and its consumer lag
    every 2 s: each assigned partition's high watermark minus the offset Faust committed."""
    from faust.types import TP

    from connectors.metrics import CONSUMER_LAG, serve
    from streams.agents.batching import every

    every_stage = settings.stages == frozenset(Stage)
    name = "worker" if every_stage else "-".join(["worker", *sorted(settings.stages)])
    serve(settings, name)

    reported: set[tuple[str, str]] = set()

    async def report_consumer_lag() -> None:
        consumer = app.consumer
        # Faust's own record of what it committed (not in its ConsumerT interface)
        committed: dict[TP, int | None] = getattr(consumer, "_committed_offset", {})
        assigned = consumer.assignment()
        for gone in reported - {(tp.topic, str(tp.partition)) for tp in assigned}:
            CONSUMER_LAG.remove(*gone)  # revoked: its new owner reports it
            reported.discard(gone)
        for tp in assigned:
            high, done = consumer.highwater(tp), committed.get(tp)
            if high is not None and done is not None:
                CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(0, high - done))
                reported.add((tp.topic, str(tp.partition)))

    every(app, 2.0, report_consumer_lag)


async def _arm_shutdown_deadline() -> None:
    """Once the worker runs (its signal handlers in place), a SIGTERM means seconds."""
    from connectors.processes import arm_shutdown_deadline

    arm_shutdown_deadline()
