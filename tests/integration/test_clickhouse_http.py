"""ClickHouse's own HTTP interface on the sink's query port, against the real running sink.

A real worker and sink land a day of usage; then ClickHouse clients that know nothing of
Railyard (clickhouse-connect over HTTP, the curl binary) query the store while the sink
owns it. Every SQL query in docs/analytics.md must answer over HTTP exactly what
``railyard sql`` (analyst.query, Railyard's ``POST /query``) answers; the engine renders
CSV and Parquet itself; writes and ``readonly=0`` are refused by the engine with
ClickHouse's READONLY; wrong credentials are refused as ClickHouse refuses them.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import clickhouse_connect
import pyarrow.parquet as pq
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from connectors.clickhouse.analyst import query
from connectors.clickhouse.clickhouse_http import DECOMPRESSORS
from connectors.clickhouse.http_auth import password_hash
from connectors.clickhouse.query_server import to_json_value
from streams.settings import PROJECT_ROOT, Settings
from tests.integration.harness import Pipeline
from tests.integration.test_billing import settled
from tests.integration.test_billing_truth import lines_of, month_of_events, setup, wait_landed
from tests.integration.test_ingest import publish

pytestmark = pytest.mark.integration

USER, PASSWORD = "analyst", "s3cret pass"
DOCS = PROJECT_ROOT / "docs" / "analytics.md"
LANDED = (
    "SELECT (SELECT count() FROM usage_windows_raw), (SELECT count() FROM late_usage_raw),"
    " (SELECT count() FROM usage_attribution_raw)"
)


def docs_queries() -> list[str]:
    """Every ```sql block of docs/analytics.md, placeholders (``{name}``, ``:name``,
    ``$name``) given a value, so a query added to the docs is covered here."""
    blocks = re.findall(r"```sql\n(.*?)```", DOCS.read_text(), flags=re.DOTALL)
    values = {"customer": "'aperture-ai'", "meter": "'ai_tokens'", "from": "'2026-11-01'"}

    def value(match: re.Match[str]) -> str:
        return values.get(match.group(1), "''")

    return [re.sub(r"\{\{?(\w+)\}?\}|\$(?=\w)\{?(\w+)\}?", value, b).strip() for b in blocks]


@pytest.fixture(scope="module")
def landed(kafka: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """The month of probe usage analytics.md's examples come from, landed by a real worker
    and sink; the sink keeps running for the tests (``test_billing_truth``'s catalog)."""
    settings, _ = setup(
        kafka,
        tmp_path_factory.mktemp("clickhouse-http"),
        analyst_users=f"{USER}:{password_hash(PASSWORD)}",
    )
    events = month_of_events(seed=14)
    pipeline = Pipeline(settings)
    try:
        pipeline.start("sink", "worker")
        publish(settings, lines_of(events))
        wait_landed(pipeline, len({e.id for e in events}))
        pipeline.wait_for(lambda: settled(settings), what="the stages to settle")
        seen: list[object] = []

        def still() -> bool:
            """Nothing landed since the last look (the views below compare two reads)."""
            seen.append(query(settings, LANDED).rows)
            time.sleep(1.0)
            return len(seen) > 1 and seen[-1] == seen[-2] and bool(seen[-1][0][0])

        pipeline.wait_for(still, what="the sink to land everything")
        yield settings
    finally:
        pipeline.stop()


def port(settings: Settings) -> int:
    return int((settings.run_dir / "sink.query-port").read_text())


def client(settings: Settings) -> Any:
    return clickhouse_connect.get_client(
        host="127.0.0.1", port=port(settings), username=USER, password=PASSWORD
    )


def as_railyard(rows: Any) -> list[list[Any]]:
    """Rows as ``railyard sql`` returns them (its JSON rendering)."""
    return [to_json_value(list(row)) for row in rows]


def curl(
    settings: Settings, *args: str, sql: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of the curl binary against the query port."""
    cmd = ["curl", "-s", "-D", "-", *args]
    if sql is not None:
        cmd += ["--data-binary", sql]
    done = subprocess.run(cmd, capture_output=True, timeout=60, check=True)
    head, _, body = done.stdout.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def url(settings: Settings, **params: str) -> str:
    return f"http://127.0.0.1:{port(settings)}/?{urllib.parse.urlencode(params)}"


def test_clickhouse_connect_answers_every_docs_query_as_railyard_sql_does(landed: Settings) -> None:
    sqls = docs_queries()
    assert len(sqls) >= 18
    http = client(landed)
    answered = 0
    for table in [
        "usage_events",
        "usage_attributed",
        "usage_windows",
        "usage_daily",
        "dead_letters",
        "late_usage",
        "unattributed_usage",
    ]:
        print(table, query(landed, f"SELECT count() FROM {table}").rows)
    for sql in sqls:
        ours = query(landed, sql)
        theirs = http.query(sql)
        assert list(theirs.column_names) == ours.columns, sql
        assert [t.name for t in theirs.column_types] == ours.types, sql
        assert as_railyard(theirs.result_rows) == ours.rows, sql
        answered += bool(ours.rows)
    assert answered >= 3  # the comparison is not only of empty results
    total = http.query("SELECT count() FROM usage_events").result_rows[0][0]
    assert total == query(landed, "SELECT count() FROM usage_events").rows[0][0] > 0


def test_dataframes_arrow_and_streams_read_what_railyard_sql_reads(landed: Settings) -> None:
    http = client(landed)
    sql = "SELECT id, customer, type, time FROM usage_attributed ORDER BY id"
    ours = query(landed, sql).rows
    df = http.query_df(sql)
    assert list(df["id"]) == [row[0] for row in ours]
    assert list(df["customer"]) == [row[1] for row in ours]
    table = http.query_arrow(sql)
    assert table.column("type").to_pylist() == [row[2] for row in ours]
    streamed: list[Any] = []
    with http.query_row_block_stream(sql) as stream:
        for block in stream:
            streamed.extend(block)
    assert as_railyard(streamed) == ours
    with http.query_rows_stream("SELECT number FROM numbers(250000)") as rows:
        assert sum(row[0] for row in rows) == 250000 * 249999 // 2


def test_curl_gets_the_engine_csv_and_parquet(landed: Settings) -> None:
    sql = (
        "SELECT customer, meter, day, quantity FROM usage_daily"
        " ORDER BY customer, meter, day, group_values"
    )
    ours = [[c, m, d, Decimal(q)] for c, m, d, q in query(landed, sql).rows]
    assert len(ours) > 10
    auth = ("-u", f"{USER}:{PASSWORD}")
    status, headers, body = curl(landed, *auth, url(landed), sql=f"{sql} FORMAT CSV")
    assert status == 200
    assert headers["content-type"] == "text/csv; charset=UTF-8; header=absent"
    assert headers["x-clickhouse-format"] == "CSV"
    assert headers["x-clickhouse-timezone"] and headers["x-clickhouse-query-id"]
    rows = list(csv.reader(io.StringIO(body.decode())))
    assert [[c, m, d, Decimal(q)] for c, m, d, q in rows] == ours

    get = url(landed, query=f"{sql} FORMAT Parquet", user=USER, password=PASSWORD)
    status, headers, body = curl(landed, get)
    assert status == 200 and headers["content-type"] == "application/octet-stream"
    assert headers["x-clickhouse-format"] == "Parquet" and body.startswith(b"PAR1")
    table = pq.read_table(io.BytesIO(body))
    assert table.column_names == ["customer", "meter", "day", "quantity"]
    columns = [table.column(i).to_pylist() for i in range(4)]
    got = [[c, m, d.isoformat(), Decimal(q)] for c, m, d, q in zip(*columns, strict=True)]
    assert got == ours


def test_formats_databases_parameters_and_compression_follow_clickhouse(landed: Settings) -> None:
    auth = ("-H", f"X-ClickHouse-User: {USER}", "-H", f"X-ClickHouse-Key: {PASSWORD}")
    status, headers, body = curl(landed, *auth, url(landed), sql="SELECT 1 AS one, 'a\tb' AS s")
    assert (status, body) == (200, b"1\ta\\tb\n")  # TabSeparated by default
    assert headers["x-clickhouse-format"] == "TabSeparated"
    status, headers, body = curl(
        landed,
        *auth,
        "-H",
        "X-ClickHouse-Format: JSONEachRow",
        "-H",
        "X-ClickHouse-Database: system",
        url(landed, param_n="41", default_format="CSV"),
        sql="SELECT {n:UInt8} + 1 AS n, currentDatabase() AS db",
    )
    assert (status, body) == (200, b'{"n":42,"db":"system"}\n')
    status, _, body = curl(
        landed,
        *auth,
        url(landed, readonly="1", max_threads="auto"),
        sql="SELECT getSetting('readonly')",
    )
    assert (status, body) == (200, b"1\n")  # settings the engine already has are no change
    status, _, body = curl(
        landed,
        *auth,
        url(landed, max_execution_time="7", result_overflow_mode="break"),
        sql="SELECT getSetting('max_execution_time'), getSetting('result_overflow_mode'),"
        " getSetting('readonly')",
    )
    assert (status, body) == (200, b"7\tbreak\t1\n")  # Grafana's timeout, still read-only
    status, headers, _ = curl(
        landed, *auth, url(landed, max_result_rows="3"), sql="SELECT number FROM numbers(10)"
    )
    assert (status, headers["x-clickhouse-exception-code"]) == (500, "396")  # the cap holds
    status, headers, body = curl(
        landed, *auth, url(landed, max_memory_usage="1000"), sql="SELECT 1"
    )
    assert (status, headers["x-clickhouse-exception-code"]) == (500, "164")
    assert b"Cannot modify 'max_memory_usage' setting in readonly mode" in body
    sql = "SELECT number FROM numbers(1000) FORMAT CSV"
    plain = "".join(f"{n}\n" for n in range(1000)).encode()
    for encoding in sorted(DECOMPRESSORS):
        request = urllib.request.Request(
            url(landed, enable_http_compression="1", user=USER, password=PASSWORD),
            data=sql.encode(),
            headers={"Accept-Encoding": encoding},
        )
        with urllib.request.urlopen(request, timeout=30) as resp:
            assert resp.headers["Content-Encoding"] == encoding
            assert DECOMPRESSORS[encoding](resp.read()) == plain
    packed = urllib.request.Request(
        url(landed, user=USER, password=PASSWORD),
        data=gzip.compress(sql.encode()),
        headers={"Content-Encoding": "gzip"},
    )
    with urllib.request.urlopen(packed, timeout=30) as resp:
        assert "Content-Encoding" not in resp.headers and resp.read() == plain
    status, headers, body = curl(
        landed, url(landed, compress="1", user=USER, password=PASSWORD), sql="SELECT 1"
    )
    assert (status, headers["x-clickhouse-exception-code"]) == (501, "48")  # said, not half-done
    assert b"enable_http_compression" in body
    for path in ("/ping", "/replicas_status", "/"):
        status, _, body = curl(landed, f"http://127.0.0.1:{port(landed)}{path}")
        assert (status, body) == (200, b"Ok.\n")


@pytest.mark.parametrize(
    ("params", "sql"),
    [
        ({}, "INSERT INTO usage_events_raw SELECT * FROM usage_events_raw LIMIT 1"),
        ({}, "CREATE TABLE intruder (a UInt8) ENGINE = Memory"),
        ({}, "DROP TABLE usage_events_raw"),
        ({"readonly": "0"}, "SELECT 1"),
        ({"max_memory_usage": "1000"}, "SELECT 1"),  # limits too: readonly=1 changes none
        ({}, "SELECT 1 SETTINGS readonly = 0"),
        ({}, "SELECT * FROM file('/etc/hostname', 'LineAsString')"),
    ],
)
def test_writes_and_lifting_readonly_are_refused_by_the_engine(
    landed: Settings, params: dict[str, str], sql: str
) -> None:
    before = query(landed, "SELECT count() FROM usage_events_raw").rows
    status, headers, body = curl(
        landed, url(landed, user=USER, password=PASSWORD, **params), sql=sql
    )
    assert status == 500  # ClickHouse's status for READONLY
    assert headers["x-clickhouse-exception-code"] == "164"
    assert body.startswith(b"Code: 164. DB::Exception: ") and b"(READONLY)" in body
    assert query(landed, "SELECT count() FROM usage_events_raw").rows == before
    assert query(landed, "EXISTS TABLE intruder").rows == [[0]]


RAW = "usage_events_raw (id)"


def test_clickhouse_connect_commands_are_refused_with_readonly(landed: Settings) -> None:
    http = client(landed)
    with pytest.raises(DatabaseError) as caught:
        http.command("CREATE TABLE intruder (a UInt8) ENGINE = Memory")
    assert getattr(caught.value, "code", None) == 164
    with pytest.raises(DatabaseError) as caught:
        http.insert("usage_events_raw", [["intruder"]], column_names=["id"])
    assert "Code: 164" in str(caught.value) and "READONLY" in str(caught.value)
    binary = urllib.request.Request(
        url(landed, user=USER, password=PASSWORD, query=f"INSERT INTO {RAW} FORMAT RowBinary"),
        data=b"\x08\xff\xfe\xfd\x00intr",  # not UTF-8: still the engine's READONLY
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(binary, timeout=30)
    assert refused.value.headers["X-ClickHouse-Exception-Code"] == "164"


@pytest.mark.parametrize(
    "args",
    [
        ("-u", f"{USER}:wrong"),
        ("-u", "default:"),
        ("-H", "X-ClickHouse-User: mallory", "-H", f"X-ClickHouse-Key: {PASSWORD}"),
    ],
)
def test_wrong_credentials_are_refused_as_clickhouse_refuses_them(
    landed: Settings, args: tuple[str, ...]
) -> None:
    status, headers, body = curl(landed, *args, url(landed), sql="SELECT 1")
    assert status == 403
    assert headers["x-clickhouse-exception-code"] == "516"
    assert re.match(
        rb"Code: 516\. DB::Exception: \w+: Authentication failed: password is incorrect,"
        rb" or there is no user with such name\. \(AUTHENTICATION_FAILED\) \(version [\d.]+\)\n",
        body,
    )


def test_wrong_credentials_in_url_and_clickhouse_connect_are_refused(landed: Settings) -> None:
    status, headers, _ = curl(landed, url(landed, user=USER, password="nope", query="SELECT 1"))
    assert (status, headers["x-clickhouse-exception-code"]) == (403, "516")
    with pytest.raises(DatabaseError) as caught:
        clickhouse_connect.get_client(
            host="127.0.0.1", port=port(landed), username=USER, password="nope"
        )
    assert "516" in str(caught.value) and "AUTHENTICATION_FAILED" in str(caught.value)


def test_railyard_post_query_is_unchanged(landed: Settings) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port(landed)}/query", data=b"SELECT 1 AS one", method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        assert resp.headers["Content-Type"] == "application/json"
        assert resp.read() == b'{"columns": ["one"], "types": ["UInt8"], "rows": [[1]]}'
    bad = urllib.request.Request(
        f"http://127.0.0.1:{port(landed)}/query", data=b"DROP TABLE usage_events_raw"
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(bad, timeout=30)
    assert caught.value.code == 400 and b"readonly" in caught.value.read().lower()
