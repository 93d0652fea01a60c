"""Migration files (connectors/clickhouse/migrate.py) and deployment settings (streams/settings.py)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import SecretStr

from connectors.clickhouse.migrate import (
    MIGRATIONS_DIR,
    apply_migrations,
    migration_files,
    statements,
)
from streams.domain.errors import ConfigError, RailyardError
from streams.domain.windows import WindowSize
from streams.settings import DEFAULT_HOME, EventLoop, Settings, Stage

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

    assert settings.clickhouse_dsn.get_secret_value() == f"chdb://{tmp_path / 'clickhouse'}"
    assert settings.embedded_clickhouse and settings.embedded_store == tmp_path / "clickhouse"
    assert (settings.kafka_dir, settings.run_dir) == (tmp_path / "kafka", tmp_path / "run")


def test_default_home_is_project_local() -> None:
    settings = Settings()

    assert settings.home == DEFAULT_HOME
    assert settings.clickhouse_dsn.get_secret_value() == f"chdb://{DEFAULT_HOME / 'clickhouse'}"


def test_home_and_dsn_follow_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RAILYARD_HOME", str(tmp_path))
    assert Settings().clickhouse_dsn.get_secret_value() == f"chdb://{tmp_path / 'clickhouse'}"

    monkeypatch.setenv("RAILYARD_CLICKHOUSE_DSN", "http://default:pw@ch:8123/db")
    assert Settings().clickhouse_dsn.get_secret_value() == "http://default:pw@ch:8123/db"
    assert not Settings().embedded_clickhouse and Settings().embedded_store is None


def test_defaults_are_valid() -> None:
    settings = Settings()

    assert settings.problems() == []
    assert settings.validate() is settings


def test_problems_lists_every_problem_at_once(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path,
        usage_partitions=0,
        replication_factor=0,
        clickhouse_dsn=SecretStr("mysql://admin:s3cret@db:3306/x"),
        kafka_bootstrap="localhost",
        catalog=tmp_path / "missing.yaml",
        max_event_bytes=255,
        stages=frozenset({Stage.ATTRIBUTE, Stage.WINDOW}),
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
        "RAILYARD_STAGES",
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
        clickhouse_dsn=SecretStr("https://ch.example:8443/db"),
        kafka_bootstrap="a:1,b:2",
    )

    assert settings.problems() == []


# -- settings: one error for everything the environment gets wrong ----------------------------


def test_a_variable_that_does_not_parse_is_a_config_error_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RAILYARD_USAGE_PARTITIONS", "abc")

    with pytest.raises(ConfigError) as info:
        Settings()

    [line] = str(info.value).splitlines()[1:]
    assert line.startswith("  - RAILYARD_USAGE_PARTITIONS:") and "'abc'" in line


def test_every_bad_variable_is_listed_in_one_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RAILYARD_USAGE_PARTITIONS", "abc")
    monkeypatch.setenv("RAILYARD_SINK_LINGER", "soon")
    monkeypatch.setenv("RAILYARD_EVENT_LOOP", "twisted")
    monkeypatch.setenv("RAILYARD_WINDOW_SIZE", "week")
    # and values that parse but break a rule: listed in the same error
    monkeypatch.setenv("RAILYARD_REPLICATION_FACTOR", "0")
    monkeypatch.setenv("RAILYARD_CATALOG", str(tmp_path / "missing.yaml"))
    monkeypatch.setenv("RAILYARD_BOOK_CHECKPOINT", "1d")

    with pytest.raises(ConfigError) as info:
        Settings()

    lines = str(info.value).splitlines()
    assert lines[0] == "invalid settings:"
    named = [line.removeprefix("  - ").split(":")[0].split(" ")[0] for line in lines[1:]]
    assert sorted(named) == [
        "RAILYARD_BOOK_CHECKPOINT",
        "RAILYARD_CATALOG",
        "RAILYARD_EVENT_LOOP",
        "RAILYARD_REPLICATION_FACTOR",
        "RAILYARD_SINK_LINGER",
        "RAILYARD_USAGE_PARTITIONS",
        "RAILYARD_WINDOW_SIZE",
    ]
    assert "'twisted'" in str(info.value) and "'week'" in str(info.value)
    assert "not a duration: 'soon'" in str(info.value)


def test_a_rule_on_a_value_that_did_not_parse_is_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAILYARD_STREAM_RETENTION", "a week")
    monkeypatch.setenv("RAILYARD_BOOK_CHECKPOINT", "1d")  # > 1 % of any retention it could mean

    with pytest.raises(ConfigError) as info:
        Settings()

    assert str(info.value).count("RAILYARD_STREAM_RETENTION") == 1
    assert "RAILYARD_BOOK_CHECKPOINT" not in str(info.value)


@pytest.mark.parametrize("stages", ["ingest,billing", "Ingest", "", " , "])
def test_an_unknown_stage_is_refused(monkeypatch: pytest.MonkeyPatch, stages: str) -> None:
    monkeypatch.setenv("RAILYARD_STAGES", stages)

    with pytest.raises(ConfigError, match="RAILYARD_STAGES") as info:
        Settings()

    if stages == "ingest,billing":
        assert "['billing']" in str(info.value)


def test_stages_parse_from_the_comma_list_into_a_set() -> None:
    assert Settings(stages=" window, rate,window").stages == {Stage.WINDOW, Stage.RATE}  # type: ignore[arg-type]
    assert Settings().stages == set(Stage)
    assert Settings().with_(stages="ingest,attribute").stages == {Stage.INGEST, Stage.ATTRIBUTE}


def test_attribute_needs_ingest(tmp_path: Path) -> None:
    alone = Settings(home=tmp_path, stages=frozenset({Stage.ATTRIBUTE})).problems()

    assert alone == ["RAILYARD_STAGES: attribute runs inside ingest (one decode); list both"]
    assert Settings(stages=frozenset({Stage.INGEST, Stage.ATTRIBUTE})).problems() == []


def test_other_railyard_variables_are_not_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAILYARD_KAFKA_LIBS", "/opt/kafka/libs")  # read by the stack
    monkeypatch.setenv("RAILYARD_RAIL_STRIPE_API_KEY", "sk_test_x")  # read by the rail

    assert Settings() == Settings(home=DEFAULT_HOME)


def test_with_parses_its_changes_like_the_environment() -> None:
    with pytest.raises(ConfigError, match="RAILYARD_USAGE_PARTITIONS"):
        Settings().with_(usage_partitions="abc")


def test_the_cli_reports_a_bad_variable_in_one_clean_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from streams.cli.main import main

    monkeypatch.setenv("RAILYARD_USAGE_PARTITIONS", "abc")
    monkeypatch.setenv("RAILYARD_REPLICATION_FACTOR", "0")
    monkeypatch.setattr("sys.argv", ["railyard", "stack", "status"])

    with pytest.raises(SystemExit) as exit_:
        main()

    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: invalid settings:") and "Traceback" not in err
    assert "RAILYARD_USAGE_PARTITIONS" in err and "RAILYARD_REPLICATION_FACTOR" in err


# -- settings: secrets ---------------------------------------------------------------------------

DSN = "https://reader:s3cret-pw@ch.example:8443/usage"
REGISTRY = "https://key:t0ken-pw@registry.example"


def test_a_secret_is_not_in_repr_or_str(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path, clickhouse_dsn=SecretStr(DSN), schema_registry_url=SecretStr(REGISTRY)
    )

    for text in (repr(settings), str(settings), f"{settings!r}", repr([settings])):
        assert "s3cret-pw" not in text and "t0ken-pw" not in text
    assert not any("s3cret-pw" in v or "t0ken-pw" in v for v in settings.as_dict().values())
    assert settings.clickhouse_dsn.get_secret_value() == DSN


def test_a_secret_is_not_in_the_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAILYARD_CLICKHOUSE_DSN", "mysql://admin:s3cret-pw@db:3306/x")
    monkeypatch.setenv("RAILYARD_USAGE_PARTITIONS", "abc")

    with pytest.raises(ConfigError) as info:
        Settings()

    assert "RAILYARD_CLICKHOUSE_DSN" in str(info.value) and "mysql://admin:***@db" in str(
        info.value
    )
    assert "s3cret-pw" not in str(info.value) and info.value.__cause__ is None
    with pytest.raises(ConfigError) as typed:
        Settings(clickhouse_dsn=1234)  # type: ignore[arg-type]
    assert "RAILYARD_CLICKHOUSE_DSN" in str(typed.value) and "1234" not in str(typed.value)


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
    settings = Settings(home=tmp_path, clickhouse_dsn=SecretStr(dsn))

    assert settings.redacted_dsn == redacted
    assert settings.as_dict()["clickhouse_dsn"] == redacted
    assert not any(secret in settings.redacted_dsn for secret in ("s3cret", "w0rd", "p@ss"))


def test_as_dict_never_shows_the_dsn_password(tmp_path: Path) -> None:
    values = Settings(home=tmp_path, clickhouse_dsn=SecretStr("http://u:s3cret@h:1/db")).as_dict()

    assert not any("s3cret" in v for v in values.values())
    assert values["home"] == str(tmp_path)


def test_with_changes_one_field_and_keeps_the_rest(tmp_path: Path) -> None:
    base = Settings(home=tmp_path)
    changed = base.with_(usage_partitions=9)

    assert (changed.usage_partitions, base.usage_partitions) == (9, 4)
    assert changed.with_(usage_partitions=4) == base


# -- settings: to_env ----------------------------------------------------------------------------


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
        clickhouse_dsn=SecretStr("https://u:pw@ch.example:8443/usage"),
        query_port=18124,
        schema_registry_url=SecretStr("http://registry:8081"),
        max_event_bytes=4096,
        max_event_age=timedelta(days=7),
        max_clock_skew=timedelta(seconds=90),
        max_message_bytes=2 << 20,
        catalog=catalog,
        window_size=WindowSize.MINUTE,
        allowed_lateness=timedelta(minutes=5),
        stream_retention=timedelta(days=3, microseconds=7),
        book_checkpoint=timedelta(milliseconds=250),
        period_grace=timedelta(hours=2),
        stages=frozenset({Stage.ROUTE, Stage.WINDOW}),
        worker_id="worker-b",
        sink_linger=timedelta(milliseconds=5),
        sink_derived_linger=timedelta(seconds=2),
        event_loop=EventLoop.AIO,
        clock_start="2024-02-29T00:00:00Z",
    )
    env = original.to_env()
    assert all(name.startswith("RAILYARD_") and isinstance(v, str) for name, v in env.items())
    assert env["RAILYARD_STAGES"] == "window,route"  # pipeline order, as an operator writes it
    assert (
        env["RAILYARD_CLICKHOUSE_DSN"] == "https://u:pw@ch.example:8443/usage"
    )  # the child needs it

    apply_env(monkeypatch, env)

    assert Settings() == original


def test_to_env_sets_every_field(tmp_path: Path) -> None:
    env = Settings(home=tmp_path).to_env()

    assert set(env) == {f"RAILYARD_{name.upper()}" for name in Settings.model_fields}


def test_to_env_round_trips_the_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    original = Settings(home=tmp_path)

    apply_env(monkeypatch, original.to_env())

    assert Settings() == original


def test_every_field_survives_to_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    original = Settings(home=tmp_path, query_port=18_999, topic_prefix="x.", max_event_bytes=4096)
    apply_env(monkeypatch, original.to_env())

    rebuilt = Settings()
    assert [getattr(rebuilt, name) for name in Settings.model_fields] == [
        getattr(original, name) for name in Settings.model_fields
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
    original = Settings(home=tmp_path).with_(**changes)

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
