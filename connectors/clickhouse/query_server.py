"""Read-only SQL over HTTP from the process that owns an embedded ClickHouse.

chDB allows one process per data directory, and that process is the sink. So the
sink answers analysts here (``railyard sql`` finds it through a file in the run
directory) while it keeps inserting. Two protocols share the port: Railyard's
``POST /query`` (JSON back, for ``railyard sql`` and ``analyst.py``) and ClickHouse's
own HTTP interface (``clickhouse_http.py``) for ClickHouse clients. Queries run with
``readonly=1``: an analyst can never write through this door.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from datetime import date, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from connectors.clickhouse.clickhouse_http import ClickHouseHttp, Reply

OK_REPLY = Reply(200, {"Content-Type": "text/plain; charset=UTF-8"}, b"Ok.\n")
OK_PATHS = frozenset({"/ping", "/replicas_status"})
"""Health paths ClickHouse answers with ``Ok.``: there are no replicas to lag here."""


def to_json_value(value: Any) -> Any:
    """Exact, JSON-safe rendering: Decimals as strings, times in ISO 8601."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json_value(v) for v in value]
    return value


def run_query(client: Any, sql: str, lock: threading.Lock) -> dict[str, Any]:
    with lock:
        result = client.query(sql, settings={"readonly": 1})
    return {
        "columns": list(result.column_names),
        "types": [t.name for t in result.column_types],
        "rows": [[to_json_value(v) for v in row] for row in result.result_rows],
    }


class QueryServer:
    """The sink's query port: ``POST /query`` with SQL in the body, JSON back; every other
    request is ClickHouse's HTTP protocol, answered by ``clickhouse``."""

    def __init__(
        self,
        client: Any,
        lock: threading.Lock,
        port: int,
        port_file: Path,
        clickhouse: ClickHouseHttp | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.client = client
        self.lock = lock
        self.port_file = port_file
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as ClickHouse clients pool connections

            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                self._clickhouse(self._body())

            def do_HEAD(self) -> None:  # noqa: N802
                self._clickhouse(self._body(), head=True)

            def do_POST(self) -> None:  # noqa: N802
                body = self._body()
                if urlsplit(self.path).path == "/query":
                    sql = body.decode()
                    try:
                        self._reply(200, run_query(server.client, sql, server.lock))
                    except Exception as exc:
                        self._reply(400, {"error": str(exc)})
                    return
                self._clickhouse(body)

            def _body(self) -> bytes:
                if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                    parts = []
                    while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                        parts.append(self.rfile.read(size))
                        self.rfile.readline()
                    while self.rfile.readline().strip():
                        pass  # trailers
                    return b"".join(parts)
                return self.rfile.read(int(self.headers.get("Content-Length", 0)))

            def _clickhouse(self, body: bytes, head: bool = False) -> None:
                url = urlsplit(self.path)
                pairs = parse_qsl(url.query, keep_blank_values=True)
                asks = any(key == "query" for key, _ in pairs)
                if url.path in OK_PATHS or (url.path == "/" and not asks and not body):
                    reply = OK_REPLY
                elif server.clickhouse is None:
                    reply = Reply(404, {"Content-Type": "text/plain"}, b"Not found\n")
                else:
                    reply = server.clickhouse.answer(pairs, dict(self.headers.items()), body)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if not head:
                    self.wfile.write(reply.body)

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.clickhouse = clickhouse
        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def start(self) -> None:
        self.thread.start()
        self.port_file.parent.mkdir(parents=True, exist_ok=True)
        self.port_file.write_text(str(self.port))

    def stop(self) -> None:
        self.port_file.unlink(missing_ok=True)
        self.httpd.shutdown()
        self.httpd.server_close()


def remote_query(port: int, sql: str, timeout: float = 60.0) -> dict[str, Any]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/query", data=sql.encode(), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())  # type: ignore[no-any-return]
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read())  # type: ignore[no-any-return]
