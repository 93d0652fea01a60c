"""ClickHouse's HTTP interface over the embedded engine: one request in, one reply out.

The rules (parameters, auth, formats, errors) are in ``http_protocol.py``; this module
runs the query. Each request gets its own chDB connection handle to the engine the sink
already owns, so nothing a request sets outlives it, and the handle is made read-only
(``SET readonly = 1``) before anything the client sent touches it: from then on the
engine itself refuses writes, DDL, file/url table functions and ``readonly=0``
(READONLY, 164), whatever the SQL says. The sink's shared lock is held around every
engine call; the result is rendered by the engine in the requested format, then sent
after the lock is released, so a slow reader never stalls the sink's inserts.
"""

from __future__ import annotations

import gzip
import importlib
import os
import re
import socket
import threading
import uuid
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors.clickhouse.http_auth import authenticate, credentials
from connectors.clickhouse.http_protocol import (
    CANNOT_DECOMPRESS,
    UNKNOWN_EXCEPTION,
    ClickHouseError,
    QueryRequest,
    content_type,
    engine_error,
    header,
    parse_request,
    request_encoding,
    response_encoding,
    result_format,
    settings_by_stage,
    split_params,
    summary_header,
)
from connectors.clickhouse.sql import literal

_SETTING_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _open_handle(path: str) -> Any:
    """A new connection handle to the one engine (untyped). chdb is imported here, on the
    sink's first analyst query: every process imports the query client, and loading the
    engine costs ~200 MiB of memory it would hold for nothing."""
    import chdb

    connect: Any = chdb.connect
    return connect(path)


_PYTHON_ONLY_FORMATS = frozenset({"dataframe", "datastore", "arrowtable"})


def _optional(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


_lz4 = _optional("lz4.frame")
_zstd = _optional("backports.zstd") or _optional("compression.zstd")
_brotli = _optional("brotli")

COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    **({"zstd": _zstd.compress} if _zstd else {}),
    **({"lz4": _lz4.compress} if _lz4 else {}),
    **({"br": _brotli.compress} if _brotli else {}),
}
DECOMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.decompress,
    "deflate": zlib.decompress,
    **({"zstd": _zstd.decompress} if _zstd else {}),
    **({"lz4": _lz4.decompress} if _lz4 else {}),
    **({"br": _brotli.decompress} if _brotli else {}),
}
"""The encodings the modules clickhouse-connect depends on provide (gzip and deflate
always; zstd, lz4 and br when installed)."""


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes = b""


@dataclass
class EngineResult:
    data: bytes
    read_rows: int
    read_bytes: int
    elapsed_ns: int


@dataclass
class ClickHouseHttp:
    """Answers ClickHouse HTTP requests from the engine at ``path`` (the sink's store)."""

    path: str
    lock: threading.Lock
    users: Mapping[str, str]
    version: str = ""
    timezone: str = ""
    display_name: str = field(default_factory=socket.gethostname)

    def __post_init__(self) -> None:
        self.path = os.path.realpath(self.path)  # chDB compares engine paths literally
        with self.lock:
            conn = _open_handle(self.path)
            try:
                row = conn.query("SELECT version(), timezone()", "TabSeparated").bytes()
            finally:
                conn.close()
        self.version, self.timezone = row.decode().strip().split("\t")

    def answer(
        self, pairs: Iterable[tuple[str, str]], headers: Mapping[str, str], body: bytes
    ) -> Reply:
        """The reply to one query request (any path but ``/ping``, ``/`` without a query,
        and Railyard's ``POST /query``)."""
        pairs = list(pairs)
        query_id = ""
        try:
            protocol, _, _ = split_params(pairs)
            user, password = credentials(headers, protocol)
            authenticate(self.users, user, password)
            text = self._decoded(body, header(headers, "Content-Encoding"))
            request = parse_request(pairs, headers, text)
            query_id = request.query_id or str(uuid.uuid4())
            result = self._run(request)
        except ClickHouseError as exc:
            return self._error(exc, query_id)
        except Exception as exc:  # a bug here still answers as ClickHouse would
            return self._error(ClickHouseError(UNKNOWN_EXCEPTION, repr(exc)), query_id)
        fmt = result_format(request.sql, request.default_format)
        out = {
            "Content-Type": content_type(fmt),
            "X-ClickHouse-Format": fmt,
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Timezone": self.timezone,
            "X-ClickHouse-Server-Display-Name": self.display_name,
            "X-ClickHouse-Summary": summary_header(
                result.read_rows, result.read_bytes, len(result.data), result.elapsed_ns
            ),
        }
        data = result.data
        encoding = response_encoding(
            request.compress_response, header(headers, "Accept-Encoding"), COMPRESSORS
        )
        if encoding is not None:
            data = COMPRESSORS[encoding](data)
            out["Content-Encoding"] = encoding
        return Reply(200, out, data)

    def _decoded(self, body: bytes, content_encoding: str) -> str:
        encoding = request_encoding(content_encoding, DECOMPRESSORS)
        if encoding is not None:
            try:
                body = DECOMPRESSORS[encoding](body)
            except Exception as exc:
                raise ClickHouseError(
                    CANNOT_DECOMPRESS, f"Cannot decompress the {encoding} request body: {exc}"
                ) from exc
        # Lossless: an INSERT's binary data after the query comes back byte for byte (and
        # meets the engine's READONLY like any other write).
        return body.decode("utf-8", "surrogateescape")

    def _run(self, request: QueryRequest) -> EngineResult:
        """Run ``request`` on a fresh read-only handle; the engine's error as ClickHouse's."""
        if request.default_format.lower() in _PYTHON_ONLY_FORMATS:
            # chDB's Python API turns these names into DataFrames, not bytes on a wire.
            raise ClickHouseError(73, f"Unknown format {request.default_format}")
        for name in request.settings:
            if not _SETTING_NAME.fullmatch(name):
                raise ClickHouseError(115, f"Unknown setting '{name}'")
        with self.lock:
            conn = _open_handle(self.path)
            try:
                # Every analyst is read-only, set before any other client value reaches
                # the handle; only the few settings a read-only profile may change go first.
                allowed, checked = settings_by_stage(request.settings)
                for name, value in allowed.items():
                    conn.query(f"SET {name} = {literal(value)}", "TabSeparated")
                conn.query("SET readonly = 1", "TabSeparated")
                if request.database:
                    conn.query(f"USE `{request.database.replace('`', '``')}`", "TabSeparated")
                for name, value in checked.items():
                    conn.query(f"SET {name} = {literal(value)}", "TabSeparated")
                sql = request.sql.encode("utf-8", "surrogateescape")
                result = conn.query(sql, request.default_format, params=request.parameters)
                return EngineResult(
                    data=result.bytes() or b"",
                    read_rows=int(result.rows_read()),
                    read_bytes=int(result.bytes_read()),
                    elapsed_ns=int(result.elapsed() * 1e9),
                )
            except Exception as exc:
                raise engine_error(str(exc)) from exc
            finally:
                conn.close()

    def _error(self, exc: ClickHouseError, query_id: str) -> Reply:
        headers = {
            "Content-Type": "text/plain; charset=UTF-8",
            "X-ClickHouse-Exception-Code": str(exc.code),
            "X-ClickHouse-Timezone": self.timezone,
            "X-ClickHouse-Server-Display-Name": self.display_name,
        }
        if query_id:
            headers["X-ClickHouse-Query-Id"] = query_id
        return Reply(exc.status, headers, exc.body(self.version))
