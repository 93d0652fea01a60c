"""Versioned SQL migrations, applied once each and in order, at every start.

Each file ``NNNN_name.sql`` is a version; applied versions are recorded in
``schema_migrations`` so starting twice changes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def statements(sql: str) -> list[str]:
    """Split a migration file on ``;`` at line ends, dropping comments and blanks."""
    out: list[str] = []
    current: list[str] = []
    for raw in sql.splitlines():
        line = raw.split("--", 1)[0].rstrip()  # migrations keep "--" out of string literals
        if not line.strip():
            continue
        current.append(line)
        if line.rstrip().endswith(";"):
            stmt = "\n".join(current).strip().rstrip(";").strip()
            if stmt:
                out.append(stmt)
            current = []
    tail = "\n".join(current).strip()
    if tail:
        out.append(tail)
    return out


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[tuple[int, Path]]:
    files = sorted(directory.glob("[0-9][0-9][0-9][0-9]_*.sql"))
    return [(int(p.name[:4]), p) for p in files]


def apply_migrations(client: Any, directory: Path = MIGRATIONS_DIR) -> list[int]:
    """Apply pending migrations; returns the versions applied now."""
    client.command(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version UInt32, name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
        "ENGINE = MergeTree ORDER BY version"
    )
    done = {row[0] for row in client.query("SELECT version FROM schema_migrations").result_rows}
    applied: list[int] = []
    for version, path in migration_files(directory):
        if version in done:
            continue
        for stmt in statements(path.read_text()):
            client.command(stmt)
        client.insert("schema_migrations", [[version, path.name]], column_names=["version", "name"])
        applied.append(version)
    return applied


STREAMING_TABLES = (
    "usage_events_raw",
    "usage_attribution_raw",
    "usage_windows_raw",
    "dead_letters_raw",
)
"""Tables the sink lands continuously, a part every few hundred milliseconds."""
STREAMING_MERGES = {"merge_selector_base": "20"}
"""ClickHouse's default (5) rewrites each row through a chain of small merges; 20 lets
more parts of a size gather before they merge. Landing 1,500-row parts into
``usage_events_raw`` took about a quarter less CPU (bench/RESULTS.md), for a few more
active parts, which FINAL reads. A tuning, not a schema change: servers too old to
know the setting keep their default."""


def tune_streaming_tables(client: Any) -> list[str]:
    """Apply :data:`STREAMING_MERGES` the engine knows to every streaming table; returns them."""
    names = ", ".join(f"'{name}'" for name in STREAMING_MERGES)
    known = [
        row[0]
        for row in client.query(
            f"SELECT name FROM system.merge_tree_settings WHERE name IN ({names})"
        ).result_rows
    ]
    if known:
        changes = ", ".join(f"{name} = {STREAMING_MERGES[name]}" for name in sorted(known))
        for table in STREAMING_TABLES:
            client.command(f"ALTER TABLE {table} MODIFY SETTING {changes}")
    return sorted(known)


def prepare_store(client: Any) -> list[int]:
    """Migrations, then the streaming tables' merge tuning: what every store owner runs."""
    applied = apply_migrations(client)
    tune_streaming_tables(client)
    return applied
