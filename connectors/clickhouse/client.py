"""ClickHouse clients: the same clickhouse-connect code for the embedded engine and a server.

``chdb:///dir`` runs the real ClickHouse engine in this process (one process per
directory: the sink owns it); ``http(s)://user:pass@host:port/db`` talks to a server.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

import clickhouse_connect

from streams.errors import StoreError
from streams.settings import Settings


def connect(settings: Settings) -> Any:
    """A clickhouse-connect client for the configured DSN."""
    dsn = settings.clickhouse_dsn
    try:
        if settings.embedded_clickhouse:
            path = urlparse(dsn).path
            from pathlib import Path

            Path(path).mkdir(parents=True, exist_ok=True)
            return clickhouse_connect.get_client(dsn=dsn)
        return clickhouse_connect.get_client(dsn=dsn)
    except Exception as exc:
        raise StoreError(f"cannot open ClickHouse at {settings.redacted_dsn}: {exc}") from exc
