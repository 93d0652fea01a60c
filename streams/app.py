"""The Faust application: one per worker process, built from :class:`Settings`.

Topics are created by ``railyard stack up`` / ``railyard topics create``, never by
Faust (``topic_allow_declare=False``), so partition counts stay under our control.
"""

from __future__ import annotations

import logging

import faust

from streams.settings import Settings

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
        stream_wait_empty=True,
    )


def build_worker_app(settings: Settings, wait_for_catalog_s: float | None = None) -> faust.App:
    """The app with every agent of the pipeline registered.

    Blocks until a catalog is in force (read from Kafka): meters, customers and
    windows all depend on it, and a new worker must rebuild it from Kafka alone.
    """
    from connectors.kafka.catalog_feed import CatalogFeed
    from streams.agents.attribute import register_attribute
    from streams.agents.ingest import register_ingest
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
    register_ingest(app, settings, feed)
    register_attribute(app, settings, feed)
    register_window(app, settings, feed)
    return app
