"""Migration files (connectors/clickhouse/migrate.py) and deployment settings (streams/settings.py)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from connectors.clickhouse.migrate import (
    MIGRATIONS_DIR,
    apply_migrations,
    migration_files,
    statements,
)
from streams.domain.errors import ConfigError, RailyardError
from streams.settings import DEFAULT_HOME, Settings

# -- statements ---------------------------------------------------------------------------


def test_statements_split_on_semicolons_at_line_ends() -> None:
    sql = (
        "CREATE TABLE a\n(\n    x UInt8\n)\nENGINE = Memory;\n\nCREATE VIEW v AS SELECT x FROM a;\n"
    )

    assert statements(sql) == [
        "CREATE TABLE a\n(\n    x UInt8\n)\nENGINE = Memory",
        "CREATE VIEW v AS SELECT x FROM a",
    ]


def test_statements_drop_comment_lines_and_blanks() -> None:
    sql = "-- header\n  -- indented comment\n\nSELECT 1;\n-- between\n\n;\n-- trailer\n"

    assert statements(sql) == ["SELECT 1"]


def test_statement_without_a_final_semicolon_is_kept() -> None:
    assert statements("SELECT 1;\nSELECT 2\nFROM t\n") == ["SELECT 1", "SELECT 2\nFROM t"]


def test_semicolon_inside_a_line_does_not_split() -> None:
    assert statements("SELECT ';' AS s, 1;\n") == ["SELECT ';' AS s, 1"]


def test_empty_and_comment_only_files_have_no_statements() -> None:
    assert statements("") == []
    assert statements("-- nothing yet\n\n") == []


def test_comment_after_a_semicolon_does_not_merge_statements() -> None:
    sql = "CREATE TABLE a (x UInt8) ENGINE = Memory; -- first\nCREATE TABLE b (y UInt8) ENGINE = Memory;\n"

    assert len(statements(sql)) == 2


def test_shipped_migrations_split_into_clean_statements() -> None:
    for _, path in migration_files():
        found = statements(path.read_text())
        assert found, path
        for stmt in found:
            assert stmt == stmt.strip() and not stmt.endswith(";"), (path, stmt)
            assert stmt.split()[0].upper() in {"CREATE", "ALTER", "INSERT", "DROP"}, (path, stmt)
            assert not any(line.strip().startswith("--") for line in stmt.splitlines())


# -- migration_files ------------------------------------------------------------------------


def test_migration_files_are_ordered_by_version(tmp_path: Path) -> None:
    for name in ["0010_late.sql", "0002_second.sql", "0001_first.sql", "0003_third.sql"]:
        (tmp_path / name).write_text("SELECT 1;")

    assert migration_files(tmp_path) == [
        (1, tmp_path / "0001_first.sql"),
        (2, tmp_path / "0002_second.sql"),
        (3, tmp_path / "0003_third.sql"),
        (10, tmp_path / "0010_late.sql"),
    ]


def test_migration_files_ignore_what_is_not_a_versioned_sql_file(tmp_path: Path) -> None:
    for name in [
        "0001_ok.sql",
        "1_short.sql",
        "00a1_letter.sql",
        "0002_notes.txt",
        "README.md",
        "0003.sql",
    ]:
        (tmp_path / name).write_text("SELECT 1;")

    assert migration_files(tmp_path) == [(1, tmp_path / "0001_ok.sql")]


def test_shipped_migrations_have_distinct_increasing_versions() -> None:
    versions = [v for v, _ in migration_files()]

    assert versions[:2] == [1, 2]
    assert versions == sorted(set(versions))
    assert all(p.parent == MIGRATIONS_DIR for _, p in migration_files())


class FakeClickHouse:
    """Records commands; remembers applied versions like the schema_migrations table."""

    def __init__(self, applied: set[int] | None = None) -> None:
        self.commands: list[str] = []
        self.applied = set(applied or ())

    def command(self, sql: str) -> None:
        self.commands.append(sql)

    def query(self, sql: str) -> Any:
        assert sql == "SELECT version FROM schema_migrations"
        return SimpleNamespace(result_rows=[(v,) for v in sorted(self.applied)])

    def insert(self, table: str, rows: list[list[Any]], column_names: list[str]) -> None:
        assert (table, column_names) == ("schema_migrations", ["version", "name"])
        self.applied.update(row[0] for row in rows)


def test_apply_migrations_runs_pending_files_once_in_order(tmp_path: Path) -> None:
    (tmp_path / "0002_b.sql").write_text("CREATE TABLE b (x UInt8) ENGINE = Memory;\n")
    (tmp_path / "0001_a.sql").write_text(
        "-- a\nCREATE TABLE a (x UInt8) ENGINE = Memory;\nSELECT 1\n"
    )
    client = FakeClickHouse()

    assert apply_migrations(client, tmp_path) == [1, 2]
    assert client.commands[1:] == [
        "CREATE TABLE a (x UInt8) ENGINE = Memory",
        "SELECT 1",
        "CREATE TABLE b (x UInt8) ENGINE = Memory",
    ]
    assert "schema_migrations" in client.commands[0]

    client.commands.clear()
    assert apply_migrations(client, tmp_path) == []
    assert len(client.commands) == 1  # only the CREATE TABLE IF NOT EXISTS bookkeeping


def test_apply_migrations_skips_versions_already_applied(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("SELECT 'a';")
    (tmp_path / "0002_b.sql").write_text("SELECT 'b';")
    client = FakeClickHouse(applied={1})

    assert apply_migrations(client, tmp_path) == [2]
    assert client.commands[1:] == ["SELECT 'b'"]


# -- settings ------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_railyard_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("RAILYARD_"):
            monkeypatch.delenv(name)


def test_default_dsn_is_the_embedded_engine_under_home(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)

    assert settings.clickhouse_dsn == f"chdb://{tmp_path / 'clickhouse'}"
    assert settings.embedded_clickhouse
    assert (settings.kafka_dir, settings.run_dir) == (tmp_path / "kafka", tmp_path / "run")


def test_default_home_is_project_local() -> None:
    settings = Settings()

    assert settings.home == DEFAULT_HOME
    assert settings.clickhouse_dsn == f"chdb://{DEFAULT_HOME / 'clickhouse'}"


def test_home_and_dsn_follow_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RAILYARD_HOME", str(tmp_path))
    assert Settings().clickhouse_dsn == f"chdb://{tmp_path / 'clickhouse'}"

    monkeypatch.setenv("RAILYARD_CLICKHOUSE_DSN", "http://default:pw@ch:8123/db")
    assert Settings().clickhouse_dsn == "http://default:pw@ch:8123/db"
    assert not Settings().embedded_clickhouse


def test_defaults_are_valid() -> None:
    settings = Settings()

    assert settings.problems() == []
    assert settings.validate() is settings


def test_problems_lists_every_problem_at_once(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path,
        usage_partitions=0,
        replication_factor=0,
        clickhouse_dsn="mysql://admin:s3cret@db:3306/x",
        kafka_bootstrap="localhost",
        catalog=tmp_path / "missing.yaml",
        max_event_bytes=255,
        event_loop="twisted",
    )

    problems = settings.problems()

    assert len(problems) == 7
    for variable in [
        "RAILYARD_USAGE_PARTITIONS",
        "RAILYARD_REPLICATION_FACTOR",
        "RAILYARD_CLICKHOUSE_DSN",
        "RAILYARD_KAFKA_BOOTSTRAP",
        "RAILYARD_CATALOG",
        "RAILYARD_MAX_EVENT_BYTES",
        "RAILYARD_EVENT_LOOP",
    ]:
        assert sum(p.startswith(variable) for p in problems) == 1, variable
    assert not any("s3cret" in p for p in problems)
    with pytest.raises(ConfigError) as info:
        settings.validate()
    assert all(p in str(info.value) for p in problems)
    assert isinstance(info.value, RailyardError)


def test_problem_boundaries_are_allowed(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path,
        usage_partitions=1,
        replication_factor=1,
        max_event_bytes=256,
        clickhouse_dsn="https://ch.example:8443/db",
        kafka_bootstrap="a:1,b:2",
    )

    assert settings.problems() == []


@pytest.mark.parametrize(
    ("dsn", "redacted"),
    [
        ("http://default:s3cret@ch:8123/db", "http://default:***@ch:8123/db"),
        ("https://u:p@ss:w0rd@ch.example:8443", "https://u:***@ch.example:8443"),
        ("https://reader@ch.example", "https://reader:***@ch.example"),
        ("http://ch:8123/db", "http://ch:8123/db"),
        ("chdb:///var/lib/railyard/clickhouse", "chdb:///var/lib/railyard/clickhouse"),
    ],
)
def test_redacted_dsn_masks_the_password(dsn: str, redacted: str, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, clickhouse_dsn=dsn)

    assert settings.redacted_dsn == redacted
    assert settings.as_dict()["clickhouse_dsn"] == redacted
    assert not any(secret in settings.redacted_dsn for secret in ("s3cret", "w0rd", "p@ss"))


def test_as_dict_never_shows_the_dsn_password(tmp_path: Path) -> None:
    values = Settings(home=tmp_path, clickhouse_dsn="http://u:s3cret@h:1/db").as_dict()

    assert not any("s3cret" in v for v in values.values())
    assert values["home"] == str(tmp_path)


def test_with_changes_one_field_and_keeps_the_rest(tmp_path: Path) -> None:
    base = Settings(home=tmp_path)
    changed = base.with_(usage_partitions=9)

    assert (changed.usage_partitions, base.usage_partitions) == (9, 4)
    assert changed.with_(usage_partitions=4) == base


def apply_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def test_to_env_round_trips_through_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    catalog = tmp_path / "catalog.yaml"
    original = Settings(
        home=tmp_path / "home",
        kafka_bootstrap="k1:19092,k2:19092",
        kafka_controller_port=19093,
        topic_prefix="run42.",
        usage_partitions=12,
        replication_factor=3,
        clickhouse_dsn="https://u:pw@ch.example:8443/usage",
        query_port=18124,
        schema_registry_url="http://registry:8081",
        max_event_bytes=4096,
        max_event_age=timedelta(days=7),
        max_clock_skew=timedelta(seconds=90),
        max_message_bytes=2 << 20,
        catalog=catalog,
        worker_id="worker-b",
        event_loop="aio",
    )
    env = original.to_env()
    assert all(name.startswith("RAILYARD_") and isinstance(v, str) for name, v in env.items())

    apply_env(monkeypatch, env)

    assert Settings() == original


def test_to_env_round_trips_the_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    original = Settings(home=tmp_path)

    apply_env(monkeypatch, original.to_env())

    assert Settings() == original


def test_every_field_survives_to_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from dataclasses import fields

    original = Settings(home=tmp_path, query_port=18_999, topic_prefix="x.", max_event_bytes=4096)
    apply_env(monkeypatch, original.to_env())

    rebuilt = Settings()
    assert [getattr(rebuilt, f.name) for f in fields(Settings)] == [
        getattr(original, f.name) for f in fields(Settings)
    ]


@pytest.mark.parametrize(
    "changes",
    [
        {"max_event_age": timedelta(hours=12)},
        {"max_event_age": timedelta(days=1, hours=12)},
        {"max_clock_skew": timedelta(seconds=1.5)},
    ],
)
def test_to_env_keeps_the_event_window_exactly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, changes: dict[str, timedelta]
) -> None:
    original = Settings(home=tmp_path, **changes)  # type: ignore[arg-type]

    apply_env(monkeypatch, original.to_env())

    assert Settings() == original


@pytest.mark.parametrize(
    ("linger", "derived", "bad"),
    [
        (timedelta(0), timedelta(seconds=1), ["RAILYARD_SINK_LINGER"]),
        (timedelta(milliseconds=1), timedelta(minutes=2), ["RAILYARD_SINK_DERIVED_LINGER"]),
        (timedelta(microseconds=1), timedelta(minutes=1), []),
    ],
)
def test_sink_lingers_are_bounded(
    tmp_path: Path, linger: timedelta, derived: timedelta, bad: list[str]
) -> None:
    problems = Settings(home=tmp_path, sink_linger=linger, sink_derived_linger=derived).problems()
    assert [p.split(" ")[0] for p in problems] == bad
