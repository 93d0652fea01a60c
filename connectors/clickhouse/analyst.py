"""``railyard sql``: read-only queries against whatever owns the store right now.

With a ClickHouse server, query it directly. With the embedded engine, ask the
running sink (it owns the data directory); if no sink runs, open the directory.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from connectors.clickhouse.client import connect
from connectors.clickhouse.query_server import remote_query, run_query
from streams.errors import StoreError
from streams.settings import Settings


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    types: list[str]
    rows: list[list[Any]]


def query_port_file(settings: Settings) -> Any:
    return settings.run_dir / "sink.query-port"


def query(settings: Settings, sql: str) -> QueryResult:
    body: dict[str, Any] | None = None
    if settings.embedded_clickhouse:
        port_file = query_port_file(settings)
        if port_file.exists():
            try:
                body = remote_query(int(port_file.read_text()), sql)
            except OSError:
                body = None  # stale file: the sink is gone, the directory is free
    if body is None:
        client = connect(settings)
        try:
            body = run_query(client, sql, threading.Lock())
        except Exception as exc:
            raise StoreError(str(exc)) from exc
    if "error" in body:
        raise StoreError(body["error"])
    return QueryResult(body["columns"], body["types"], body["rows"])
