"""``railyard sql``: read-only queries against whatever owns the store right now.

With a ClickHouse server, query it directly. With the embedded engine, ask the
running sink (it owns the data directory); if no sink runs, open the directory.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from connectors.clickhouse.client import connect
from connectors.clickhouse.query_server import remote_query, run_query
from connectors.clickhouse.sql import literal
from streams.domain.catalog import Catalog
from streams.domain.errors import StoreError
from streams.settings import Settings


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    types: list[str]
    rows: list[list[Any]]


def query_port_file(settings: Settings) -> Any:
    return settings.run_dir / "sink.query-port"


def sink_alive(settings: Settings) -> bool:
    """Whether a sink process owns the embedded store right now (its pid file is live)."""
    pid_file = settings.run_dir / "sink.pid"
    try:
        os.kill(int(pid_file.read_text()), 0)
    except (OSError, ValueError):
        return False
    return True


def query(settings: Settings, sql: str, *, open_store: bool = True) -> QueryResult:
    """``sql`` read-only. ``open_store`` False: never open an embedded store no sink owns
    (a long-running process must leave it to the sink), raise :class:`StoreError` instead."""
    body: dict[str, Any] | None = None
    if settings.embedded_clickhouse and sink_alive(settings):
        # Never open the directory beside a live owner: chDB allows one process.
        last: OSError | None = None
        for attempt in range(20):
            try:
                body = remote_query(int(query_port_file(settings).read_text()), sql)
                break
            except OSError as exc:  # starting up, or busy: the owner is alive, so wait
                last = exc
                time.sleep(0.25 * (attempt + 1))
        else:
            raise StoreError(f"the sink owns the store but did not answer: {last}")
    if body is None and settings.embedded_clickhouse and not open_store:
        raise StoreError("no sink is running: it owns the store and answers queries")
    if body is None:
        client = connect(settings)
        try:
            body = run_query(client, sql, threading.Lock())
        except Exception as exc:
            raise StoreError(str(exc)) from exc
        finally:
            client.close()  # releases the embedded store for the sink
    if "error" in body:
        raise StoreError(body["error"])
    return QueryResult(body["columns"], body["types"], body["rows"])


IN_FORCE_SQL = (
    "SELECT document FROM catalog_versions FINAL WHERE version ="
    " (SELECT argMax(version, kafka_offset) FROM catalog_applications FINAL)"
)
"""The catalog applied last (the newest offset on the ``catalog`` topic), as landed."""


def catalog_in_force(settings: Settings, *, open_store: bool = True) -> Catalog | None:
    """The catalog in force as the sink landed it, None before the first one landed."""
    rows = query(settings, IN_FORCE_SQL, open_store=open_store).rows
    return Catalog.from_json(rows[0][0]) if rows else None


def stored_catalog(settings: Settings, version: str) -> Catalog | None:
    """The catalog ``version`` as the sink landed it (``catalog_versions``), None if absent."""
    sql = f"SELECT document FROM catalog_versions FINAL WHERE version = {literal(version)}"
    rows = query(settings, sql).rows
    return Catalog.from_json(rows[0][0]) if rows else None
