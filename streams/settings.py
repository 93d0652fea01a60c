"""One typed settings object for every Railyard process.

Values come from ``RAILYARD_*`` environment variables (or keyword overrides in
tests); :meth:`Settings.validate` lists every problem at once so a bad deployment
fails at start-up with the whole picture instead of one error per restart.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from pathlib import Path

from streams.domain.errors import ConfigError
from streams.domain.window_replay import rebuild_reach
from streams.domain.windows import WindowSize

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_HOME = PROJECT_ROOT / ".railyard"


def _env(name: str, default: str) -> str:
    return os.environ.get(f"RAILYARD_{name}", default)


_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """``40d``, ``12h``, ``90s``, ``250ms`` or plain seconds."""
    text = text.strip()
    for unit in sorted(_UNITS, key=len, reverse=True):
        if text.endswith(unit) and text[: -len(unit)].replace(".", "", 1).isdigit():
            return timedelta(seconds=float(text[: -len(unit)]) * _UNITS[unit])
    try:
        return timedelta(seconds=float(text))
    except ValueError:
        raise ConfigError(f"not a duration: {text!r} (use e.g. 40d, 12h, 90s)") from None


def format_duration(value: timedelta) -> str:
    """Exact inverse of :func:`parse_duration`, in microseconds when needed."""
    micros = value // timedelta(microseconds=1)
    return f"{micros // 1_000_000}s" if micros % 1_000_000 == 0 else f"{micros}us"


EVENT_LOOPS = ("uvloop", "aio")
RETENTION_MARGIN = timedelta(days=1)
"""Added to a retention a stage rebuilds from: stages reason in event time, retention
counts in wall-clock time, and the watermark can trail arrival by a partition's lag."""


def parse_instant(text: str) -> datetime | None:
    """An RFC 3339 instant (``Z`` or an offset required), None when ``text`` is not one."""
    try:
        value = datetime.fromisoformat(text.strip().upper())  # RFC 3339 allows t and z
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


@dataclass(frozen=True)
class Settings:
    """Deployment settings shared by the CLI, the stream workers and the connectors."""

    home: Path = field(default_factory=lambda: Path(_env("HOME", str(DEFAULT_HOME))))
    """Project-local state: broker data and logs, the embedded ClickHouse, pid files."""

    kafka_bootstrap: str = field(default_factory=lambda: _env("KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    kafka_controller_port: int = field(
        default_factory=lambda: int(_env("KAFKA_CONTROLLER_PORT", "9093"))
    )
    topic_prefix: str = field(default_factory=lambda: _env("TOPIC_PREFIX", ""))
    """Prefix for every topic name, so several deployments (or test runs) share one broker."""

    usage_partitions: int = field(default_factory=lambda: int(_env("USAGE_PARTITIONS", "4")))
    replication_factor: int = field(default_factory=lambda: int(_env("REPLICATION_FACTOR", "1")))

    clickhouse_dsn: str = field(default_factory=lambda: _env("CLICKHOUSE_DSN", ""))
    """``chdb:///<dir>`` (embedded engine, the default) or ``http(s)://user:pass@host:port/db``."""

    query_port: int = field(default_factory=lambda: int(_env("QUERY_PORT", "8124")))
    """Port on which the sink that owns an embedded ClickHouse answers analysts' queries."""

    schema_registry_url: str = field(default_factory=lambda: _env("SCHEMA_REGISTRY_URL", ""))
    """When set, usage events use Confluent Schema Registry framing instead of single-object."""

    max_event_bytes: int = field(default_factory=lambda: int(_env("MAX_EVENT_BYTES", "65536")))
    max_event_age: timedelta = field(
        default_factory=lambda: parse_duration(_env("MAX_EVENT_AGE", "40d"))
    )
    """Older events are rejected; it is also how long event ids are remembered, so a
    duplicate is dropped however late it comes, as long as the event is acceptable at all."""
    max_clock_skew: timedelta = field(
        default_factory=lambda: parse_duration(_env("MAX_CLOCK_SKEW", "1h"))
    )

    max_message_bytes: int = field(
        default_factory=lambda: int(_env("MAX_MESSAGE_BYTES", str(1 << 20)))
    )
    catalog: Path = field(
        default_factory=lambda: Path(
            _env("CATALOG", str(PROJECT_ROOT / "deploy" / "catalog.example.yaml"))
        )
    )
    """The billing catalog (meters, customers, plans) in force."""

    window_size: str = field(default_factory=lambda: _env("WINDOW_SIZE", "hour"))
    """Tumbling event-time window: minute, hour or day."""
    allowed_lateness: timedelta = field(
        default_factory=lambda: parse_duration(_env("ALLOWED_LATENESS", "30m"))
    )
    """How long after a window ends a late event still corrects it; later ones are adjustments."""
    stream_retention: timedelta = field(
        default_factory=lambda: parse_duration(_env("STREAM_RETENTION", "7d"))
    )
    """How long the bounded stream topics keep records (``usage``, ``usage.accepted``,
    ``usage.attributed``, ``usage.windows``, ``usage.late``, ``billing.spend``,
    ``billing.commands``): how long a stage may be down without losing input, and how far
    back they can be re-read. The window stage rebuilds from ``usage.attributed``, so it
    must be at least :attr:`min_stream_retention` (checked). State that must outlive it is
    kept in compacted topics that never expire (``connectors/kafka/topics.py``)."""

    book_checkpoint: timedelta = field(
        default_factory=lambda: parse_duration(_env("BOOK_CHECKPOINT", "5s"))
    )
    """How often the rate stage writes its book's changes (newest per key) to the compacted
    ``billing.book``, with the input positions they cover; a restart replays only the tail
    of ``usage.windows``/``usage.late`` after them, so it must be far below
    ``RAILYARD_STREAM_RETENTION`` (checked). 0 writes after every batch."""

    period_grace: timedelta = field(
        default_factory=lambda: parse_duration(_env("PERIOD_GRACE", "1h"))
    )
    """How long after a billing period ends (in event time) it closes and is invoiced."""

    stages: str = field(
        default_factory=lambda: _env("STAGES", "ingest,attribute,window,rate,route")
    )
    """Agents this worker runs; split them across processes to scale stages independently.
    ``attribute`` runs inside the ingest agent (one decode per event), so it goes with ``ingest``."""

    worker_id: str = field(default_factory=lambda: _env("WORKER_ID", "railyard"))

    sink_linger: timedelta = field(
        default_factory=lambda: parse_duration(_env("SINK_LINGER", "100ms"))
    )
    """How long the sink holds accepted events and dead letters before inserting them:
    latency from produce to queryable against the engine's fixed cost per INSERT."""
    sink_derived_linger: timedelta = field(
        default_factory=lambda: parse_duration(_env("SINK_DERIVED_LINGER", "1s"))
    )
    """The same for every other topic (attribution, windows, billing, delivery)."""
    event_loop: str = field(default_factory=lambda: _env("EVENT_LOOP", "uvloop"))
    """The workers' asyncio loop: ``uvloop`` (libuv, Faust's own extra) or ``aio`` (the
    standard library's). Sockets, timers and callbacks of the Kafka clients run on it."""
    clock_start: str = field(default_factory=lambda: _env("CLOCK_START", ""))
    """An RFC 3339 instant with its offset (``2024-02-29T00:00:00Z``): the worker's clock
    reads it at start-up and advances with real time from there. Empty: the wall clock.
    The clock judges event age and skew at ingest; ``railyard demo --today`` runs its
    worker on one, so a demo dated in the past or the future accepts its own events."""

    def __post_init__(self) -> None:
        if not self.clickhouse_dsn:
            object.__setattr__(self, "clickhouse_dsn", f"chdb://{self.home / 'clickhouse'}")

    @property
    def embedded_clickhouse(self) -> bool:
        return self.clickhouse_dsn.startswith("chdb:")

    @property
    def kafka_dir(self) -> Path:
        return self.home / "kafka"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def dedup_memory(self) -> timedelta:
        """How long ingest remembers an accepted event id: an event stamped up to the clock
        skew in the future is still valid ``max_event_age`` after its own time, so a re-send
        then must still be recognised."""
        return self.max_event_age + self.max_clock_skew

    @property
    def min_stream_retention(self) -> timedelta:
        """The shortest retention of ``usage.attributed`` the window stage can rebuild from:
        every window still open and the replay horizon before it, plus the clock skew (an
        event may arrive that long before its time) and :data:`RETENTION_MARGIN`."""
        known = self.window_size in tuple(WindowSize)  # an unknown one is reported by problems()
        size = WindowSize(self.window_size) if known else WindowSize.DAY
        reach = rebuild_reach(size, self.allowed_lateness)
        return reach + self.max_clock_skew + RETENTION_MARGIN

    @property
    def clock_origin(self) -> datetime | None:
        """:attr:`clock_start` as an aware instant; None for the wall clock (or if invalid,
        which :meth:`problems` reports)."""
        return parse_instant(self.clock_start) if self.clock_start else None

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    def problems(self) -> list[str]:
        """Every configuration problem, not just the first."""
        out: list[str] = []
        if self.usage_partitions < 1:
            out.append("RAILYARD_USAGE_PARTITIONS must be >= 1")
        if self.event_loop not in EVENT_LOOPS:
            out.append(f"RAILYARD_EVENT_LOOP must be one of {', '.join(EVENT_LOOPS)}")
        if self.clock_start and self.clock_origin is None:
            out.append(
                "RAILYARD_CLOCK_START must be an RFC 3339 instant with its offset "
                f"(e.g. 2024-02-29T00:00:00Z), got {self.clock_start!r}"
            )
        if self.replication_factor < 1:
            out.append("RAILYARD_REPLICATION_FACTOR must be >= 1")
        if not (self.clickhouse_dsn.startswith(("chdb:", "http://", "https://"))):
            out.append(
                f"RAILYARD_CLICKHOUSE_DSN must be chdb:// or http(s)://, got {self.redacted_dsn}"
            )
        if ":" not in self.kafka_bootstrap:
            out.append("RAILYARD_KAFKA_BOOTSTRAP must be host:port[,host:port]")
        if not self.catalog.is_file():
            out.append(f"RAILYARD_CATALOG: no such file {self.catalog}")
        if self.window_size not in ("minute", "hour", "day"):
            out.append(
                f"RAILYARD_WINDOW_SIZE must be minute, hour or day, got {self.window_size!r}"
            )
        unknown = set(self.stages.split(",")) - set(STAGES)
        if unknown:
            out.append(f"RAILYARD_STAGES: unknown stage(s) {sorted(unknown)}")
        elif "attribute" in self.stages.split(",") and "ingest" not in self.stages.split(","):
            out.append("RAILYARD_STAGES: attribute runs inside ingest (one decode); list both")
        if not timedelta(0) <= self.book_checkpoint * 100 <= self.stream_retention:
            out.append(
                f"RAILYARD_BOOK_CHECKPOINT ({self.book_checkpoint}) must be at least 0 and at most"
                " 1 % of RAILYARD_STREAM_RETENTION: a restart re-reads the input written since"
                " the last checkpoint, which must still be there"
            )
        if self.stream_retention < self.min_stream_retention:
            out.append(
                f"RAILYARD_STREAM_RETENTION ({self.stream_retention}) is shorter than the window"
                f" stage needs to rebuild from usage.attributed ({self.min_stream_retention}:"
                " window + allowed lateness + 1 day of replay horizon + clock skew + 1 day);"
                " raise it, or shorten the lateness"
            )
        if self.max_event_bytes < 256:
            out.append("RAILYARD_MAX_EVENT_BYTES must be >= 256")
        for name, linger in (
            ("SINK_LINGER", self.sink_linger),
            ("SINK_DERIVED_LINGER", self.sink_derived_linger),
        ):
            if not timedelta(0) < linger <= timedelta(minutes=1):
                out.append(f"RAILYARD_{name} must be more than 0 and at most 1m")
        return out

    def validate(self) -> Settings:
        problems = self.problems()
        if problems:
            raise ConfigError("invalid settings:\n  - " + "\n  - ".join(problems))
        return self

    @property
    def redacted_dsn(self) -> str:
        """The DSN with any password masked, safe for logs and errors."""
        return _redact(self.clickhouse_dsn)

    def to_env(self) -> dict[str, str]:
        """``RAILYARD_*`` variables that rebuild these settings in a child process."""
        return {
            "RAILYARD_HOME": str(self.home),
            "RAILYARD_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "RAILYARD_KAFKA_CONTROLLER_PORT": str(self.kafka_controller_port),
            "RAILYARD_TOPIC_PREFIX": self.topic_prefix,
            "RAILYARD_USAGE_PARTITIONS": str(self.usage_partitions),
            "RAILYARD_REPLICATION_FACTOR": str(self.replication_factor),
            "RAILYARD_CLICKHOUSE_DSN": self.clickhouse_dsn,
            "RAILYARD_QUERY_PORT": str(self.query_port),
            "RAILYARD_SCHEMA_REGISTRY_URL": self.schema_registry_url,
            "RAILYARD_MAX_EVENT_BYTES": str(self.max_event_bytes),
            "RAILYARD_MAX_EVENT_AGE": format_duration(self.max_event_age),
            "RAILYARD_MAX_CLOCK_SKEW": format_duration(self.max_clock_skew),
            "RAILYARD_MAX_MESSAGE_BYTES": str(self.max_message_bytes),
            "RAILYARD_CATALOG": str(self.catalog),
            "RAILYARD_WINDOW_SIZE": self.window_size,
            "RAILYARD_ALLOWED_LATENESS": format_duration(self.allowed_lateness),
            "RAILYARD_STREAM_RETENTION": format_duration(self.stream_retention),
            "RAILYARD_PERIOD_GRACE": format_duration(self.period_grace),
            "RAILYARD_BOOK_CHECKPOINT": format_duration(self.book_checkpoint),
            "RAILYARD_STAGES": self.stages,
            "RAILYARD_WORKER_ID": self.worker_id,
            "RAILYARD_SINK_LINGER": format_duration(self.sink_linger),
            "RAILYARD_SINK_DERIVED_LINGER": format_duration(self.sink_derived_linger),
            "RAILYARD_EVENT_LOOP": self.event_loop,
            "RAILYARD_CLOCK_START": self.clock_start,
        }

    def as_dict(self) -> dict[str, str]:
        out = {f.name: str(getattr(self, f.name)) for f in fields(self)}
        out["clickhouse_dsn"] = self.redacted_dsn
        out["schema_registry_url"] = _redact(self.schema_registry_url)
        return out


STAGES = ("ingest", "attribute", "window", "rate", "route")
"""Every stage a worker can run, in pipeline order."""


def _redact(url: str) -> str:
    """A URL with its password masked."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url
