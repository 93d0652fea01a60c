"""ClickHouse's HTTP protocol rules (connectors/clickhouse/http_protocol.py, http_auth.py),
without sockets.

Each expectation is what ClickHouse's own server does (HTTPHandler.cpp,
authenticateUserByHTTP.cpp, exceptionCodeToHTTPStatus.cpp), so a client that works
against ClickHouse works against the sink.
"""

from __future__ import annotations

import base64

import pytest

from connectors.clickhouse.http_auth import authenticate, credentials, parse_users, password_hash
from connectors.clickhouse.http_protocol import (
    AUTHENTICATION_FAILED,
    DEFAULT_FORMAT,
    NOT_IMPLEMENTED,
    PROTOCOL_PARAMS,
    READONLY,
    SYNTAX_ERROR,
    UNKNOWN_COMPRESSION_METHOD,
    UNKNOWN_EXCEPTION,
    ClickHouseError,
    content_type,
    engine_error,
    http_status,
    parse_request,
    query_text,
    request_encoding,
    response_encoding,
    result_format,
    settings_by_stage,
    split_params,
    summary_header,
)

# -- parameters: protocol, settings, query parameters -----------------------------------------


def test_every_protocol_parameter_the_brief_and_clickhouse_name_stays_out_of_the_settings() -> None:
    named = {
        "query",
        "database",
        "default_format",
        "user",
        "password",
        "session_id",
        "session_timeout",
        "session_check",
        "query_id",
        "compress",
        "decompress",
        "enable_http_compression",
        "wait_end_of_query",
        "buffer_size",
        "quota_key",
        "stacktrace",
        "role",
        "client_protocol_version",
        "close_session",
    }
    assert named <= PROTOCOL_PARAMS
    protocol, settings, parameters = split_params((name, "1") for name in sorted(named))
    assert set(protocol) == named and settings == {} and parameters == {}


def test_settings_and_query_parameters_are_split_as_clickhouse_splits_them() -> None:
    protocol, settings, parameters = split_params(
        [
            ("query", "SELECT {n:UInt8}"),
            ("param_n", "7"),
            ("param_name_with_underscores", "x"),
            ("max_threads", "2"),
            ("readonly", "0"),
            ("", "skipped"),
            ("param_", "not a parameter"),
            ("max_threads", "3"),
            ("database", "first"),
            ("database", "second"),
        ]
    )
    assert protocol == {"query": "SELECT {n:UInt8}", "database": "first"}
    assert parameters == {"n": "7", "name_with_underscores": "x"}
    assert settings == {"max_threads": "3", "readonly": "0", "param_": "not a parameter"}


def test_only_settings_a_read_only_profile_may_change_go_before_readonly() -> None:
    first, then = settings_by_stage(
        {
            "max_execution_time": "30",
            "readonly": "0",
            "max_result_rows": "200",
            "result_overflow_mode": "break",
            "max_memory_usage": "0",
            "x": "1",
        }
    )
    assert first == {
        "max_execution_time": "30",
        "max_result_rows": "200",
        "result_overflow_mode": "break",
    }
    assert then == {"readonly": "0", "max_memory_usage": "0", "x": "1"}
    assert settings_by_stage({}) == ({}, {})


@pytest.mark.parametrize(
    ("url", "body", "expected"),
    [
        ("SELECT 1", "", "SELECT 1"),
        ("", "SELECT 2", "SELECT 2"),
        ("INSERT INTO t FORMAT CSV", "1,2", "INSERT INTO t FORMAT CSV\n1,2"),
        ("", "", ""),
    ],
)
def test_the_query_is_the_url_parameter_then_the_body(url: str, body: str, expected: str) -> None:
    assert query_text(url, body) == expected


def test_a_request_carries_database_format_settings_and_parameters() -> None:
    request = parse_request(
        [("database", "db1"), ("default_format", "JSON"), ("max_threads", "2"), ("param_x", "1")],
        {},
        "SELECT {x:UInt8}",
    )
    assert request.sql == "SELECT {x:UInt8}"
    assert (request.database, request.default_format) == ("db1", "JSON")
    assert request.settings == {"max_threads": "2"}
    assert request.parameters == {"x": "1"}
    assert request.query_id is None and request.compress_response is False


def test_headers_take_precedence_over_parameters_for_database_and_format() -> None:
    request = parse_request(
        [("database", "db1"), ("default_format", "JSON"), ("query_id", "q-1")],
        {"x-clickhouse-database": "db2", "X-ClickHouse-Format": "CSV"},
        "SELECT 1",
    )
    assert (request.database, request.default_format, request.query_id) == ("db2", "CSV", "q-1")


def test_without_any_format_the_default_is_tab_separated() -> None:
    request = parse_request([], {}, "SELECT 1")
    assert request.default_format == DEFAULT_FORMAT == "TabSeparated"
    assert request.database is None


@pytest.mark.parametrize("value", ["1", "true", "True", "on"])
def test_enable_http_compression_asks_for_a_compressed_response(value: str) -> None:
    assert parse_request([("enable_http_compression", value)], {}, "SELECT 1").compress_response
    assert not parse_request([("enable_http_compression", "0")], {}, "SELECT 1").compress_response


def test_an_empty_query_is_refused_as_clickhouse_refuses_it() -> None:
    with pytest.raises(ClickHouseError) as caught:
        parse_request([("query", "  ")], {}, "\n")
    assert caught.value.code == SYNTAX_ERROR and caught.value.status == 400


@pytest.mark.parametrize("flag", ["compress", "decompress"])
def test_native_block_compression_is_refused_clearly(flag: str) -> None:
    with pytest.raises(ClickHouseError) as caught:
        parse_request([(flag, "1")], {}, "SELECT 1")
    assert caught.value.code == NOT_IMPLEMENTED and caught.value.status == 501
    assert "enable_http_compression" in caught.value.message
    assert parse_request([(flag, "0")], {}, "SELECT 1").sql == "SELECT 1"


def test_external_data_is_refused_clearly() -> None:
    with pytest.raises(ClickHouseError) as caught:
        parse_request([], {"Content-Type": "multipart/form-data; boundary=x"}, "SELECT 1")
    assert caught.value.code == NOT_IMPLEMENTED and "param_" in caught.value.message


# -- formats -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT 1", "TabSeparated"),
        ("SELECT 1 FORMAT CSV", "CSV"),
        ("SELECT 1\n FORMAT Parquet;", "Parquet"),
        ("select 1 format JSONEachRow  ", "JSONEachRow"),
        ("SELECT 1 FORMAT Native SETTINGS max_threads = 1", "Native"),
        ("SELECT 'FORMAT CSV' AS s", "TabSeparated"),
        ("SELECT format('{}', 'x')", "TabSeparated"),
    ],
)
def test_the_result_format_is_the_trailing_clause_or_the_default(sql: str, expected: str) -> None:
    assert result_format(sql, "TabSeparated") == expected


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("TabSeparated", "text/tab-separated-values; charset=UTF-8"),
        ("TSVWithNames", "text/tab-separated-values; charset=UTF-8"),
        ("CSV", "text/csv; charset=UTF-8; header=absent"),
        ("CSVWithNames", "text/csv; charset=UTF-8; header=present"),
        ("CSVWithNamesAndTypes", "text/csv; charset=UTF-8; header=present"),
        ("JSON", "application/json; charset=UTF-8"),
        ("JSONEachRow", "application/json; charset=UTF-8"),
        ("JSONCompact", "application/json; charset=UTF-8"),
        ("XML", "application/xml; charset=UTF-8"),
        ("Native", "application/octet-stream"),
        ("RowBinaryWithNamesAndTypes", "application/octet-stream"),
        ("Parquet", "application/octet-stream"),
        ("ArrowStream", "application/octet-stream"),
        ("PrettyCompact", "text/plain; charset=UTF-8"),
        ("Values", "text/plain; charset=UTF-8"),
    ],
)
def test_content_types_are_those_of_clickhouse_formats(fmt: str, expected: str) -> None:
    assert content_type(fmt) == expected


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (194, 401),  # REQUIRED_PASSWORD
        (516, 403),  # AUTHENTICATION_FAILED
        (192, 403),  # UNKNOWN_USER
        (497, 403),  # ACCESS_DENIED
        (62, 400),  # SYNTAX_ERROR
        (36, 400),  # BAD_ARGUMENTS
        (53, 400),  # TYPE_MISMATCH
        (60, 404),  # UNKNOWN_TABLE
        (47, 404),  # UNKNOWN_IDENTIFIER
        (73, 404),  # UNKNOWN_FORMAT
        (115, 404),  # UNKNOWN_SETTING
        (229, 413),  # QUERY_IS_TOO_LARGE
        (48, 501),  # NOT_IMPLEMENTED
        (159, 408),  # TIMEOUT_EXCEEDED
        (381, 411),  # HTTP_LENGTH_REQUIRED
        (209, 503),  # SOCKET_TIMEOUT
        (779, 415),  # UNSUPPORTED_MEDIA_TYPE
        (164, 500),  # READONLY: not in ClickHouse's list, so 500
        (241, 500),  # MEMORY_LIMIT_EXCEEDED
        (1002, 500),
    ],
)
def test_error_codes_map_to_clickhouse_http_statuses(code: int, status: int) -> None:
    assert http_status(code) == status


def test_an_engine_error_keeps_its_code_and_text() -> None:
    err = engine_error(
        "Code: 164. DB::Exception: default: Cannot execute query in readonly mode. (READONLY)"
    )
    assert err.code == READONLY and err.status == 500
    body = err.body("26.9.2.1").decode()
    assert body == (
        "Code: 164. DB::Exception: default: Cannot execute query in readonly mode."
        " (READONLY) (version 26.9.2.1)\n"
    )


def test_an_engine_error_behind_a_prefix_is_still_found() -> None:
    err = engine_error("ChdbError: Code: 60. DB::Exception: Unknown table 'x'. (UNKNOWN_TABLE)")
    assert (err.code, err.status) == (60, 404)
    assert err.message == "Unknown table 'x'. (UNKNOWN_TABLE)"


def test_a_failure_without_a_code_is_an_unknown_exception() -> None:
    err = engine_error("segfault in the flux capacitor")
    assert (err.code, err.status) == (UNKNOWN_EXCEPTION, 500)
    assert err.body("1").decode().startswith("Code: 1002. DB::Exception: segfault")
    assert "(UNKNOWN_EXCEPTION)" in err.body("1").decode()


# -- users and credentials ---------------------------------------------------------------------


def test_no_users_configured_means_default_with_an_empty_password() -> None:
    users = parse_users("")
    assert users == {"default": password_hash("")}
    authenticate(users, "default", "")
    with pytest.raises(ClickHouseError):
        authenticate(users, "default", "guess")


def test_configured_users_replace_default_and_are_stored_hashed() -> None:
    text = f"alice:{password_hash('wonder').upper()}, bob:{password_hash('builder')}"
    users = parse_users(text)
    assert set(users) == {"alice", "bob"}
    assert "wonder" not in str(users)
    authenticate(users, "alice", "wonder")
    authenticate(users, "bob", "builder")
    with pytest.raises(ClickHouseError):
        authenticate(users, "default", "")


@pytest.mark.parametrize("text", ["alice", "alice:abc", f"alice:{'g' * 64}"])
def test_a_malformed_users_setting_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="alice"):
        parse_users(text)


@pytest.mark.parametrize(("user", "password"), [("alice", "wrong"), ("mallory", "wonder")])
def test_wrong_credentials_fail_as_clickhouse_fails_them(user: str, password: str) -> None:
    users = parse_users(f"alice:{password_hash('wonder')}")
    with pytest.raises(ClickHouseError) as caught:
        authenticate(users, user, password)
    assert caught.value.code == AUTHENTICATION_FAILED and caught.value.status == 403
    assert caught.value.body("v").decode() == (
        f"Code: 516. DB::Exception: {user}: Authentication failed: password is incorrect,"
        " or there is no user with such name. (AUTHENTICATION_FAILED) (version v)\n"
    )


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("headers", "protocol", "expected"),
    [
        ({}, {}, ("default", "")),
        ({}, {"user": "alice", "password": "pw"}, ("alice", "pw")),
        ({}, {"password": "pw"}, ("default", "pw")),
        ({"Authorization": _basic("alice", "p:w")}, {}, ("alice", "p:w")),
        ({"X-ClickHouse-User": "alice", "X-ClickHouse-Key": "pw"}, {}, ("alice", "pw")),
        ({"x-clickhouse-user": "alice"}, {}, ("alice", "")),
    ],
)
def test_credentials_come_from_one_of_clickhouse_three_places(
    headers: dict[str, str], protocol: dict[str, str], expected: tuple[str, str]
) -> None:
    assert credentials(headers, protocol) == expected


@pytest.mark.parametrize(
    ("headers", "protocol", "words"),
    [
        (
            {"X-ClickHouse-User": "a", "Authorization": _basic("a", "b")},
            {},
            "X-ClickHouse HTTP headers and Authorization HTTP header",
        ),
        (
            {"X-ClickHouse-User": "a"},
            {"user": "a"},
            "X-ClickHouse HTTP headers and authentication via parameters",
        ),
        (
            {"Authorization": _basic("a", "b")},
            {"password": "b"},
            "Authorization HTTP header and authentication via parameters",
        ),
        ({"X-ClickHouse-Key": "k"}, {}, "empty user name from X-ClickHouse HTTP headers"),
        ({"Authorization": _basic("", "b")}, {}, "empty user name from Authorization"),
        ({}, {"user": ""}, "empty user name from authentication via parameters"),
        ({"Authorization": "Bearer xyz"}, {}, "'Bearer' HTTP Authorization scheme"),
        ({"Authorization": "Basic !!!"}, {}, "malformed Basic credentials"),
    ],
)
def test_mixed_or_empty_credentials_are_refused(
    headers: dict[str, str], protocol: dict[str, str], words: str
) -> None:
    with pytest.raises(ClickHouseError) as caught:
        credentials(headers, protocol)
    assert caught.value.code == AUTHENTICATION_FAILED and words in caught.value.message


# -- compression -------------------------------------------------------------------------------


def test_a_response_is_compressed_only_when_enabled_and_accepted() -> None:
    available = ["gzip", "deflate", "zstd", "lz4"]
    assert response_encoding(False, "gzip", available) is None
    assert response_encoding(True, "", available) is None
    assert response_encoding(True, "identity", available) is None
    assert response_encoding(True, "gzip", available) == "gzip"
    assert response_encoding(True, "lz4, zstd, br, gzip, deflate", available) == "gzip"
    assert response_encoding(True, "zstd;q=1.0, lz4", available) == "zstd"
    assert response_encoding(True, "br", available) is None  # not installed here
    assert response_encoding(True, "br, lz4", available) == "lz4"


def test_a_request_body_encoding_must_be_one_this_process_decodes() -> None:
    assert request_encoding("", ["gzip"]) is None
    assert request_encoding("identity", ["gzip"]) is None
    assert request_encoding("GZIP", ["gzip"]) == "gzip"
    with pytest.raises(ClickHouseError) as caught:
        request_encoding("snappy", ["gzip"])
    assert caught.value.code == UNKNOWN_COMPRESSION_METHOD


def test_the_summary_header_is_clickhouse_json_of_strings() -> None:
    import json

    summary = json.loads(summary_header(10, 200, 30, 4000))
    assert summary["read_rows"] == "10" and summary["read_bytes"] == "200"
    assert summary["result_bytes"] == "30" and summary["elapsed_ns"] == "4000"
    assert summary["written_rows"] == "0"
    assert all(isinstance(v, str) for v in summary.values())
