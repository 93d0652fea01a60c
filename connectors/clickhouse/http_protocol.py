"""ClickHouse's HTTP protocol rules, as pure functions: no sockets, no engine, no clock.

The sink answers ClickHouse clients (clickhouse-connect, Grafana, DBeaver, curl) on its
query port; ``query_server.py`` reads the socket, ``clickhouse_http.py`` runs the engine,
and this module (with ``http_auth.py`` for who is asking) decides everything in between the way ClickHouse's own server does (``src/Server/HTTPHandler.cpp``,
``authenticateUserByHTTP.cpp``, ``exceptionCodeToHTTPStatus.cpp``): which URL parameters
are protocol and which are settings or query parameters, which format a result is in,
which compression to answer with, and how an error looks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

DEFAULT_FORMAT = "TabSeparated"
"""ClickHouse's ``default_format`` when neither the query nor the request names one."""

PROTOCOL_PARAMS = frozenset(
    {
        "query",
        "database",
        "default_format",
        "user",
        "password",
        "quota_key",
        "query_id",
        "session_id",
        "session_timeout",
        "session_check",
        "close_session",
        "compress",
        "decompress",
        "enable_http_compression",
        "http_zlib_compression_level",
        "wait_end_of_query",
        "buffer_size",
        "stacktrace",
        "role",
        "client_protocol_version",
        "send_progress_in_http_headers",
        "http_headers_progress_interval_ms",
        "cancel_http_readonly_queries_on_client_close",
    }
)
"""URL parameters the HTTP layer consumes itself; none of them reaches the engine.

ClickHouse's list (``reserved_param_names``) plus the settings that only mean something to
an HTTP server (compression, progress headers, cancel on close), which an embedded engine
has no use for."""

QUERY_PARAMETER_PREFIX = "param_"

CHANGEABLE_IN_READONLY = frozenset(
    {
        "max_execution_time",
        "timeout_overflow_mode",
        "max_result_rows",
        "max_result_bytes",
        "result_overflow_mode",
    }
)
"""Settings an analyst may still set although read-only, like a ClickHouse profile's
``<changeable_in_readonly/>`` constraint. Tools set them on every query: Grafana's
ClickHouse data source its query timeout (``max_execution_time``), SQL editors their
fetch limit (``max_result_rows``, ``result_overflow_mode=break``). The engine's defaults
are no limit, so a value only caps a query, or says what to do at the cap. Every other
setting meets the engine's ``readonly=1`` and is refused (READONLY) unless it changes
nothing."""


def settings_by_stage(settings: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(applied before ``readonly=1``, applied after it): only
    :data:`CHANGEABLE_IN_READONLY` goes first; ``readonly`` itself always goes after."""
    first = {k: v for k, v in settings.items() if k in CHANGEABLE_IN_READONLY}
    return first, {k: v for k, v in settings.items() if k not in first}


# Error codes and names as the engine (ClickHouse 26.9 in chDB) numbers them.
ACCESS_DENIED = 497
AUTHENTICATION_FAILED = 516
BAD_ARGUMENTS = 36
NOT_IMPLEMENTED = 48
READONLY = 164
SYNTAX_ERROR = 62
UNKNOWN_COMPRESSION_METHOD = 89
CANNOT_DECOMPRESS = 271
UNKNOWN_EXCEPTION = 1002

ERROR_NAMES = {
    ACCESS_DENIED: "ACCESS_DENIED",
    AUTHENTICATION_FAILED: "AUTHENTICATION_FAILED",
    BAD_ARGUMENTS: "BAD_ARGUMENTS",
    NOT_IMPLEMENTED: "NOT_IMPLEMENTED",
    READONLY: "READONLY",
    SYNTAX_ERROR: "SYNTAX_ERROR",
    UNKNOWN_COMPRESSION_METHOD: "UNKNOWN_COMPRESSION_METHOD",
    CANNOT_DECOMPRESS: "CANNOT_DECOMPRESS",
    UNKNOWN_EXCEPTION: "UNKNOWN_EXCEPTION",
}

_STATUS_BY_CODE: dict[int, int] = {
    194: 401,  # REQUIRED_PASSWORD
    **dict.fromkeys((192, 193, 516, 512, 497), 403),  # UNKNOWN_USER .. ACCESS_DENIED
    **dict.fromkeys(
        # BAD_ARGUMENTS, CANNOT_COMPILE_REGEXP, the CANNOT_PARSE_* family, DUPLICATE_COLUMN,
        # ILLEGAL_COLUMN, AST errors, THERE_IS_NO_COLUMN, SYNTAX_ERROR, INCORRECT_DATA,
        # TYPE_MISMATCH, VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
        (36, 427, 6, 25, 26, 38, 41, 72, 441, 675, 676, 27, 376, 15, 44, 37, 123, 8, 167, 168)
        + (223, 62, 117, 53, 321),
        400,
    ),
    **dict.fromkeys(
        # UNKNOWN_TABLE, _FUNCTION, _IDENTIFIER, _TYPE, _STORAGE, _DATABASE, _SETTING,
        # _DIRECTION_OF_SORTING, _AGGREGATE_FUNCTION, _FORMAT, _DATABASE_ENGINE,
        # _TYPE_OF_QUERY, _ROLE
        (60, 46, 47, 50, 56, 81, 115, 152, 63, 73, 336, 78, 511),
        404,
    ),
    229: 413,  # QUERY_IS_TOO_LARGE
    48: 501,  # NOT_IMPLEMENTED
    209: 503,  # SOCKET_TIMEOUT
    76: 503,  # CANNOT_OPEN_FILE
    381: 411,  # HTTP_LENGTH_REQUIRED
    159: 408,  # TIMEOUT_EXCEEDED
    439: 503,  # CANNOT_SCHEDULE_TASK
    779: 415,  # UNSUPPORTED_MEDIA_TYPE
}


def http_status(code: int) -> int:
    """The HTTP status ClickHouse answers an exception code with (500 for the rest,
    READONLY included)."""
    return _STATUS_BY_CODE.get(code, 500)


class ClickHouseError(Exception):
    """An error to answer the way ClickHouse does: ``Code: N. DB::Exception: ...``."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message

    def body(self, version: str) -> bytes:
        """The response body, with the server's version as ClickHouse appends it."""
        name = ERROR_NAMES.get(self.code)
        suffix = f" ({name})" if name and not self.message.endswith(f"({name})") else ""
        text = f"Code: {self.code}. DB::Exception: {self.message}{suffix}"
        return f"{text} (version {version})\n".encode()

    @property
    def status(self) -> int:
        return http_status(self.code)


_ENGINE_ERROR = re.compile(r"Code: (\d+)\. (?:DB::Exception: )?(.*)", re.DOTALL)


def engine_error(text: str) -> ClickHouseError:
    """The engine's exception text (``Code: 164. DB::Exception: ... (READONLY)``) as an error;
    text without a code (a failure outside the engine) is UNKNOWN_EXCEPTION."""
    match = _ENGINE_ERROR.search(text)
    if match is None:
        return ClickHouseError(UNKNOWN_EXCEPTION, text.strip() or "unknown error")
    return ClickHouseError(int(match.group(1)), match.group(2).strip())


# --- the request: parameters, query text, format ---------------------------------------


@dataclass(frozen=True)
class QueryRequest:
    """What one ClickHouse HTTP request asks the engine for."""

    sql: str
    default_format: str
    database: str | None
    settings: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)
    query_id: str | None = None
    compress_response: bool = False


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def split_params(
    pairs: Iterable[tuple[str, str]],
) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """URL parameters as (protocol, settings, query parameters), ClickHouse's split.

    ``param_x`` binds ``{x:Type}`` in the query; empty names (``?&a=b``) are skipped; the
    first value of a protocol parameter wins, the last of a setting (as ClickHouse applies
    them in order)."""
    protocol: dict[str, str] = {}
    settings: dict[str, str] = {}
    parameters: dict[str, str] = {}
    for key, value in pairs:
        if not key:
            continue
        if key in PROTOCOL_PARAMS:
            protocol.setdefault(key, value)
        elif key.startswith(QUERY_PARAMETER_PREFIX) and len(key) > len(QUERY_PARAMETER_PREFIX):
            parameters[key[len(QUERY_PARAMETER_PREFIX) :]] = value
        else:
            settings[key] = value
    return protocol, settings, parameters


def query_text(url_query: str, body: str) -> str:
    """The query: the ``query`` parameter, then the body, as ClickHouse concatenates them
    (a newline between, so ``INSERT ... FORMAT X`` in the URL takes its data from the body)."""
    if url_query and body:
        return f"{url_query}\n{body}"
    return url_query or body


def header(headers: Mapping[str, str], name: str) -> str:
    """A request header by case-insensitive name, empty when absent."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return ""


def parse_request(
    pairs: Iterable[tuple[str, str]], headers: Mapping[str, str], body: str
) -> QueryRequest:
    """The query a request asks for, or the ClickHouseError ClickHouse would answer with.

    ``X-ClickHouse-Database`` and ``X-ClickHouse-Format`` take precedence over the
    ``database`` and ``default_format`` parameters, as in ClickHouse."""
    protocol, settings, parameters = split_params(pairs)
    for flag in ("compress", "decompress"):
        if _truthy(protocol.get(flag)):
            raise ClickHouseError(
                NOT_IMPLEMENTED,
                f"{flag}=1 (ClickHouse's native block compression) is not supported by"
                " Railyard's embedded store; use HTTP compression"
                " (enable_http_compression=1 with Accept-Encoding, or Content-Encoding)",
            )
    if header(headers, "Content-Type").lower().startswith("multipart/form-data"):
        raise ClickHouseError(
            NOT_IMPLEMENTED,
            "external data (multipart/form-data) is not supported by Railyard's embedded"
            " store; pass query parameters as param_<name> URL parameters",
        )
    sql = query_text(protocol.get("query", ""), body)
    if not sql.strip():
        raise ClickHouseError(SYNTAX_ERROR, "Empty query")
    database = header(headers, "X-ClickHouse-Database") or protocol.get("database") or None
    fmt = header(headers, "X-ClickHouse-Format") or protocol.get("default_format") or ""
    return QueryRequest(
        sql=sql,
        default_format=fmt or DEFAULT_FORMAT,
        database=database,
        settings=settings,
        parameters=parameters,
        query_id=protocol.get("query_id") or None,
        compress_response=_truthy(protocol.get("enable_http_compression")),
    )


_TRAILING_FORMAT = re.compile(
    r"\bFORMAT\s+([A-Za-z][A-Za-z0-9_]*)\s*(?:SETTINGS\b[^;]*)?;?\s*\Z", re.IGNORECASE
)


def result_format(sql: str, default_format: str) -> str:
    """The format the engine renders ``sql`` in, for the response headers only: the
    query's trailing ``FORMAT`` clause, else the default. The engine reads the query
    itself; this never decides what runs."""
    match = _TRAILING_FORMAT.search(sql)
    return match.group(1) if match else default_format


_BINARY_FORMATS = (
    "native",
    "rowbinary",
    "parquet",
    "arrow",
    "orc",
    "avro",
    "protobuf",
    "capnproto",
    "msgpack",
    "bsoneachrow",
    "npy",
)


def content_type(fmt: str) -> str:
    """The Content-Type ClickHouse sends with a result in ``fmt`` (each format's own
    ``getContentType``): binary formats octet-stream, unknown ones text/plain."""
    folded = fmt.lower()
    if folded.startswith(_BINARY_FORMATS):
        return "application/octet-stream"
    if folded.startswith(("tabseparated", "tsv")):
        return "text/tab-separated-values; charset=UTF-8"
    if folded.startswith("csv"):
        header = "present" if "withnames" in folded else "absent"
        return f"text/csv; charset=UTF-8; header={header}"
    if folded.startswith(("json", "ndjson")):
        return "application/json; charset=UTF-8"
    if folded == "xml":
        return "application/xml; charset=UTF-8"
    if folded == "markdown":
        return "text/markdown; charset=UTF-8"
    return "text/plain; charset=UTF-8"


# --- compression -----------------------------------------------------------------------

RESPONSE_ENCODINGS = ("gzip", "deflate", "br", "zstd", "lz4")
"""ClickHouse's order of preference when a client accepts several encodings."""


def response_encoding(enabled: bool, accept_encoding: str, available: Iterable[str]) -> str | None:
    """The Content-Encoding to answer with: only when the request set
    ``enable_http_compression=1``, and the first of ClickHouse's preferences that the
    client accepts and this process can produce."""
    if not enabled:
        return None
    accepted = {part.split(";")[0].strip().lower() for part in accept_encoding.split(",")}
    usable = set(available)
    for encoding in RESPONSE_ENCODINGS:
        if encoding in accepted and encoding in usable:
            return encoding
    return None


def request_encoding(content_encoding: str, available: Iterable[str]) -> str | None:
    """The encoding of a request body (``Content-Encoding``), None for identity; one this
    process cannot decode is UNKNOWN_COMPRESSION_METHOD."""
    encoding = content_encoding.strip().lower()
    if encoding in {"", "identity", "none"}:
        return None
    if encoding not in set(available):
        raise ClickHouseError(
            UNKNOWN_COMPRESSION_METHOD, f"Unknown compression method '{content_encoding}'"
        )
    return encoding


def summary_header(read_rows: int, read_bytes: int, result_bytes: int, elapsed_ns: int) -> str:
    """``X-ClickHouse-Summary``: ClickHouse's JSON of counters, every value a string."""
    values = {
        "read_rows": read_rows,
        "read_bytes": read_bytes,
        "written_rows": 0,
        "written_bytes": 0,
        "total_rows_to_read": read_rows,
        "result_bytes": result_bytes,
        "elapsed_ns": elapsed_ns,
    }
    return "{" + ",".join(f'"{k}":"{v}"' for k, v in values.items()) + "}"
