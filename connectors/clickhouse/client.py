"""ClickHouse clients: the same clickhouse-connect code for the embedded engine and a server.

``chdb:///dir`` runs the real ClickHouse engine in this process (one process per
directory: the sink owns it); ``http(s)://user:pass@host:port/db`` talks to a server.
"""

from __future__ import annotations

import time
from typing import Any

import clickhouse_connect

from streams.domain.errors import StoreError
from streams.settings import Settings


def connect(settings: Settings, wait_for_lock_s: float = 15.0) -> Any:
    """A clickhouse-connect client for the configured DSN.

    An embedded store briefly held by another process (a one-off ``railyard sql``
    while no sink ran) is waited for rather than failed on.
    """
    if settings.embedded_store is not None:
        settings.embedded_store.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_for_lock_s
    while True:
        try:
            return clickhouse_connect.get_client(dsn=settings.clickhouse_dsn.get_secret_value())
        except Exception as exc:
            locked = "Cannot lock file" in str(exc) or "another server instance" in str(exc).lower()
            if settings.embedded_clickhouse and locked and time.monotonic() < deadline:
                time.sleep(0.5)
                continue
            raise StoreError(f"cannot open ClickHouse at {settings.redacted_dsn}: {exc}") from exc
