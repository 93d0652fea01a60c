"""Integration fixtures: one real Kafka broker per session, a fresh namespace per test.

Each test gets its own topic prefix, home directory (embedded ClickHouse, logs)
and query port, so tests never see each other's data while sharing one broker.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from connectors.files import load_catalog
from connectors.kafka.admin import create_topics
from connectors.kafka.catalog_feed import publish_catalog
from connectors.rails.sandbox import RailPeer, start_peer
from streams.settings import Settings
from tests.integration.harness import Pipeline, free_port
from tests.integration.rails_harness import InProcess, start_runners


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """The project's own broker; RAILYARD_TEST_KAFKA=host:port uses one already running."""
    existing = os.environ.get("RAILYARD_TEST_KAFKA")
    if existing:
        yield Settings(kafka_bootstrap=existing)
        return
    from tests.fixtures.kafka import start_broker

    broker, settings = start_broker(tmp_path_factory.mktemp("kafka"))
    try:
        yield settings
    finally:
        broker.down()


def namespace(kafka: Settings, home: Path, **overrides: object) -> Settings:
    settings = kafka.with_(
        home=home,
        topic_prefix=f"t{uuid.uuid4().hex[:8]}.",
        clickhouse_dsn=f"chdb://{home / 'clickhouse'}",
        query_port=free_port(),
        worker_id="railyard-test",
        **overrides,
    )
    create_topics(settings)
    publish_catalog(settings, load_catalog(settings.catalog))
    return settings


@pytest.fixture
def stack(kafka: Settings, tmp_path: Path) -> Settings:
    return namespace(kafka, tmp_path / "home")


@pytest.fixture
def pipeline(stack: Settings) -> Iterator[Pipeline]:
    p = Pipeline(stack)
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture
def running(stack: Settings) -> Iterator[Callable[..., InProcess]]:
    """Start rail runners in this process (``running("webhook", ...)``); stopped after."""
    yield from start_runners(stack)


@pytest.fixture
def webhook(tmp_path: Path) -> Iterator[RailPeer]:
    """The webhook rail's stand-in, on a port of its own."""
    peer = start_peer("webhook", tmp_path)
    yield peer
    peer.stop()
