"""One typed settings object for every Railyard process.

Values come from ``RAILYARD_*`` environment variables (or keyword arguments in tests),
parsed by pydantic-settings into the types below. Every problem, a value that does not
parse as much as a cross-field rule it breaks, is reported at once in one
:class:`ConfigError` naming each variable, so a bad deployment fails at start-up with
the whole picture instead of one error per restart.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Self
from urllib.parse import urlparse

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ModelWrapValidatorHandler,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from streams.domain.errors import ConfigError
from streams.domain.window_replay import rebuild_reach
from streams.domain.windows import WindowSize

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_HOME = PROJECT_ROOT / ".railyard"
ENV_PREFIX = "RAILYARD_"

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


class Stage(StrEnum):
    """A stage a worker can run; declared in pipeline order."""

    INGEST = "ingest"
    ATTRIBUTE = "attribute"
    WINDOW = "window"
    RATE = "rate"
    ROUTE = "route"


class EventLoop(StrEnum):
    UVLOOP = "uvloop"
    AIO = "aio"


def _duration(value: object) -> object:
    """The environment's ``40d`` form; a ValueError, so pydantic lists it with the others."""
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
    return value


def _stage_list(value: object) -> object:
    """The environment's ``ingest,attribute`` form, every unknown name refused in one message."""
    if not isinstance(value, str):
        return value
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = sorted(set(names) - set(Stage))
    if unknown:
        raise ValueError(f"unknown stage(s) {unknown}; the stages are {', '.join(Stage)}")
    return frozenset(Stage(name) for name in names)


def _some_stage(stages: frozenset[Stage]) -> frozenset[Stage]:
    if not stages:
        raise ValueError(f"list at least one of {', '.join(Stage)}")
    return stages


Duration = Annotated[timedelta, BeforeValidator(_duration)]
Stages = Annotated[
    frozenset[Stage], NoDecode, BeforeValidator(_stage_list), AfterValidator(_some_stage)
]


class Settings(BaseSettings):
    """Deployment settings shared by the CLI, the stream workers and the connectors.

    Construction parses (a value of the wrong type raises :class:`ConfigError`);
    :meth:`validate` then checks the rules between values, as every process does at
    start-up. Credentials are :class:`SecretStr`: masked in ``repr``, logs and errors.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")

    home: Path = DEFAULT_HOME
    """Project-local state: broker data and logs, the embedded ClickHouse, pid files."""

    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_controller_port: int = 9093
    topic_prefix: str = ""
    """Prefix for every topic name, so several deployments (or test runs) share one broker."""

    usage_partitions: int = 4
    replication_factor: int = 1

    clickhouse_dsn: SecretStr = SecretStr("")
    """``chdb:///<dir>`` (embedded engine; empty means ``chdb://<home>/clickhouse``) or
    ``http(s)://user:pass@host:port/db``: secret, since it carries the password."""

    query_port: int = 8124
    """Port on which the sink that owns an embedded ClickHouse answers analysts' queries
    (Railyard's ``POST /query`` and ClickHouse's own HTTP interface)."""

    query_host: str = "127.0.0.1"
    """Address the query port listens on: loopback by default, so only this machine's
    analysts reach it; ``0.0.0.0`` exposes it (then set :attr:`analyst_users`)."""

    analyst_users: SecretStr = SecretStr("")
    """Who may query over ClickHouse's HTTP interface: ``name:sha256hex`` pairs separated by
    commas, each password stored as its SHA-256 (``printf %s pw | sha256sum``). Empty means
    ClickHouse's ``default`` user with an empty password. Every analyst is read-only."""

    metrics_port: int = 0
    """Port of each long-running process's Prometheus endpoint (``connectors/metrics.py``):
    0 picks a free one, written to ``<run dir>/<process>.metrics-port``; -1 serves none."""

    metrics_host: str = "127.0.0.1"
    """Address the metrics endpoint listens on (``0.0.0.0`` in a container)."""

    schema_registry_url: SecretStr = SecretStr("")
    """When set, usage events use Confluent Schema Registry framing instead of single-object.
    Secret, since it may carry basic-auth credentials."""

    max_event_bytes: int = 65536
    max_event_age: Duration = timedelta(days=40)
    """Older events are rejected; it is also how long event ids are remembered, so a
    duplicate is dropped however late it comes, as long as the event is acceptable at all."""
    max_clock_skew: Duration = timedelta(hours=1)

    max_message_bytes: int = 1 << 20
    catalog: Path = PROJECT_ROOT / "deploy" / "catalog.example.yaml"
    """The billing catalog (meters, customers, plans) in force."""

    window_size: WindowSize = WindowSize.HOUR
    """Tumbling event-time window: minute, hour or day."""
    allowed_lateness: Duration = timedelta(minutes=30)
    """How long after a window ends a late event still corrects it; later ones are adjustments."""
    stream_retention: Duration = timedelta(days=7)
    """How long the bounded stream topics keep records (``usage``, ``usage.accepted``,
    ``usage.attributed``, ``usage.windows``, ``usage.late``, ``billing.spend``,
    ``billing.commands``): how long a stage may be down without losing input, and how far
    back they can be re-read. The window stage rebuilds from ``usage.attributed``, so it
    must be at least :attr:`min_stream_retention` (checked). State that must outlive it is
    kept in compacted topics that never expire (``connectors/kafka/topics.py``)."""

    book_checkpoint: Duration = timedelta(seconds=5)
    """How often the rate stage writes its book's changes (newest per key) to the compacted
    ``billing.book``, with the input positions they cover; a restart replays only the tail
    of ``usage.windows``/``usage.late`` after them, so it must be far below
    ``RAILYARD_STREAM_RETENTION`` (checked). 0 writes after every batch."""

    period_grace: Duration = timedelta(hours=1)
    """How long after a billing period ends (in event time) it closes and is invoiced."""

    stages: Stages = frozenset(Stage)
    """Agents this worker runs (``ingest,attribute`` in the environment); split them across
    processes to scale stages independently. ``attribute`` runs inside the ingest agent
    (one decode per event), so it goes with ``ingest``."""

    worker_id: str = "railyard"

    sink_linger: Duration = timedelta(milliseconds=100)
    """How long the sink holds accepted events and dead letters before inserting them:
    latency from produce to queryable against the engine's fixed cost per INSERT."""
    sink_derived_linger: Duration = timedelta(seconds=1)
    """The same for every other topic (attribution, windows, billing, delivery)."""
    event_loop: EventLoop = EventLoop.UVLOOP
    """The workers' asyncio loop: ``uvloop`` (libuv, Faust's own extra) or ``aio`` (the
    standard library's). Sockets, timers and callbacks of the Kafka clients run on it."""
    clock_start: str = ""
    """An RFC 3339 instant with its offset (``2024-02-29T00:00:00Z``): the worker's clock
    reads it at start-up and advances with real time from there. Empty: the wall clock.
    The clock judges event age and skew at ingest; ``railyard demo --today`` runs its
    worker on one, so a demo dated in the past or the future accepts its own events."""

    api_port: int = 8888
    """Port of ``railyard api``, the OpenMeter-compatible ingest and usage API
    (``docs/api.md``); 0 picks a free one, written to ``<run dir>/api.port``."""
    api_host: str = "127.0.0.1"
    """Address ``railyard api`` listens on (``0.0.0.0`` in a container)."""
    api_max_body_bytes: int = 1 << 20
    """Largest request body ``railyard api`` reads; a bigger one is refused with 413."""
    api_max_inflight: int = 50_000
    """Events ``railyard api`` may have sent and not yet seen acknowledged; above it a
    request is refused with 429 and ``Retry-After`` (backpressure)."""
    api_rate: float = 20_000.0
    """Events per second each API key may ingest, on average (a token bucket)."""
    api_burst: int = 40_000
    """Events an API key may send at once before its rate applies (the bucket's size)."""
    api_anonymous_loopback: bool = False
    """Let requests from 127.0.0.1/::1 in without a key while no key exists (the demo)."""
    console_secret: SecretStr = SecretStr("")
    """The HMAC key that signs the console's customer portal links (``railyard console
    link``, ``docs/console.md``); empty: no link can be made or opened. Changing it
    revokes every link given out."""

    @model_validator(mode="wrap")
    @classmethod
    def _one_error_for_every_problem(
        cls, data: Any, handler: ModelWrapValidatorHandler[Self]
    ) -> Self:
        """Values that do not parse, and the rules the others break, in one ConfigError.

        The rules are checked on the values that did parse (the others at their
        defaults), leaving out every rule that involves a value that did not.
        """
        try:
            return handler(data)
        except ValidationError as exc:
            errors = exc.errors()
            bad = {str(e["loc"][0]) for e in errors if e["loc"]}
            listing = [cls._describe(e) for e in errors]
            if isinstance(data, dict):
                rest = {name: value for name, value in data.items() if name not in bad}
                for name in bad.intersection(cls.model_fields):  # as arguments: env is read again
                    rest[name] = cls.model_fields[name].get_default(call_default_factory=True)
                try:
                    parsed = cls.model_validate(rest)
                except ConfigError:
                    pass  # every value that parsed is listed by name already
                else:
                    listing += [p for names, p in parsed._checks() if not bad.intersection(names)]
            raise ConfigError(_listing(listing)) from None  # the cause would show the values

    @classmethod
    def _describe(cls, error: ErrorDetails) -> str:
        name = str(error["loc"][0]) if error["loc"] else ""
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            return f"{env_name(name)}: not a setting"
        field = cls.model_fields.get(name)
        if error["type"] == "value_error" or field is None or field.annotation is SecretStr:
            return f"{env_name(name)}: {message}"  # a secret's value is never shown
        return f"{env_name(name)}: {message}, got {error['input']!r}"

    @model_validator(mode="after")
    def _embedded_store_under_home(self) -> Self:
        if not self.clickhouse_dsn.get_secret_value():
            # Derived once, at parse time, so to_env() passes it on and with_(home=...)
            # keeps the store in place, as it always did; frozen, hence __dict__.
            self.__dict__["clickhouse_dsn"] = SecretStr(f"chdb://{self.home / 'clickhouse'}")
        return self

    @property
    def embedded_clickhouse(self) -> bool:
        return self.embedded_store is not None

    @property
    def embedded_store(self) -> Path | None:
        """The embedded engine's directory (``chdb://<dir>``); None for a ClickHouse server."""
        dsn = self.clickhouse_dsn.get_secret_value()  # chdb:// has no credentials
        return Path(urlparse(dsn).path) if dsn.startswith("chdb:") else None

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
        reach = rebuild_reach(self.window_size, self.allowed_lateness)
        return reach + self.max_clock_skew + RETENTION_MARGIN

    @property
    def clock_origin(self) -> datetime | None:
        """:attr:`clock_start` as an aware instant; None for the wall clock (or if invalid,
        which :meth:`problems` reports)."""
        return parse_instant(self.clock_start) if self.clock_start else None

    def with_(self, **changes: object) -> Settings:
        """A copy with ``changes``, parsed like the environment (``stages="ingest"`` works);
        a bad value raises :class:`ConfigError`. The environment is not read again."""
        return type(self).model_validate({**dict(self), **changes})

    def _checks(self) -> list[tuple[tuple[str, ...], str]]:
        """Every rule broken, each with the fields it involves."""
        out: list[tuple[tuple[str, ...], str]] = []
        if self.usage_partitions < 1:
            out.append((("usage_partitions",), "RAILYARD_USAGE_PARTITIONS must be >= 1"))
        if self.clock_start and self.clock_origin is None:
            out.append(
                (
                    ("clock_start",),
                    "RAILYARD_CLOCK_START must be an RFC 3339 instant with its offset "
                    f"(e.g. 2024-02-29T00:00:00Z), got {self.clock_start!r}",
                )
            )
        if self.replication_factor < 1:
            out.append((("replication_factor",), "RAILYARD_REPLICATION_FACTOR must be >= 1"))
        if not self.clickhouse_dsn.get_secret_value().startswith(("chdb:", "http://", "https://")):
            out.append(
                (
                    ("clickhouse_dsn",),
                    f"RAILYARD_CLICKHOUSE_DSN must be chdb:// or http(s)://, got {self.redacted_dsn}",
                )
            )
        if not _analyst_users_ok(self.analyst_users.get_secret_value()):
            out.append(
                (
                    ("analyst_users",),
                    "RAILYARD_ANALYST_USERS must be name:sha256hex pairs separated by commas",
                )
            )
        if ":" not in self.kafka_bootstrap:
            out.append(
                (("kafka_bootstrap",), "RAILYARD_KAFKA_BOOTSTRAP must be host:port[,host:port]")
            )
        if not self.catalog.is_file():
            out.append((("catalog",), f"RAILYARD_CATALOG: no such file {self.catalog}"))
        if Stage.ATTRIBUTE in self.stages and Stage.INGEST not in self.stages:
            out.append(
                (
                    ("stages",),
                    "RAILYARD_STAGES: attribute runs inside ingest (one decode); list both",
                )
            )
        if not timedelta(0) <= self.book_checkpoint * 100 <= self.stream_retention:
            out.append(
                (
                    ("book_checkpoint", "stream_retention"),
                    f"RAILYARD_BOOK_CHECKPOINT ({self.book_checkpoint}) must be at least 0 and"
                    " at most 1 % of RAILYARD_STREAM_RETENTION: a restart re-reads the input"
                    " written since the last checkpoint, which must still be there",
                )
            )
        if self.stream_retention < self.min_stream_retention:
            out.append(
                (
                    ("stream_retention", "window_size", "allowed_lateness", "max_clock_skew"),
                    f"RAILYARD_STREAM_RETENTION ({self.stream_retention}) is shorter than the"
                    " window stage needs to rebuild from usage.attributed"
                    f" ({self.min_stream_retention}: window + allowed lateness + 1 day of replay"
                    " horizon + clock skew + 1 day); raise it, or shorten the lateness",
                )
            )
        if self.max_event_bytes < 256:
            out.append((("max_event_bytes",), "RAILYARD_MAX_EVENT_BYTES must be >= 256"))
        if not 0 <= self.api_port < 65536:
            out.append((("api_port",), "RAILYARD_API_PORT must be 0 to 65535"))
        for name in ("api_max_body_bytes", "api_max_inflight", "api_rate", "api_burst"):
            if getattr(self, name) <= 0:
                out.append(((name,), f"{env_name(name)} must be more than 0"))
        for name in ("sink_linger", "sink_derived_linger"):
            if not timedelta(0) < getattr(self, name) <= timedelta(minutes=1):
                out.append(((name,), f"{env_name(name)} must be more than 0 and at most 1m"))
        return out

    def problems(self) -> list[str]:
        """Every rule between values this deployment breaks, not just the first."""
        return [problem for _, problem in self._checks()]

    def validate(self) -> Settings:  # type: ignore[override]  # not BaseModel.validate
        problems = self.problems()
        if problems:
            raise ConfigError(_listing(problems))
        return self

    @property
    def redacted_dsn(self) -> str:
        """The DSN with any password masked, safe for logs and errors."""
        return _redact(self.clickhouse_dsn.get_secret_value())

    def to_env(self) -> dict[str, str]:
        """``RAILYARD_*`` variables that rebuild these settings in a child process,
        secrets included: the child needs them."""
        return {env_name(name): _env_text(getattr(self, name)) for name in type(self).model_fields}

    def as_dict(self) -> dict[str, str]:
        """Every setting as text for logs and reports: secrets masked."""
        out: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            out[name] = _shown(value) if isinstance(value, SecretStr) else _env_text(value)
        return out


def _analyst_users_ok(text: str) -> bool:
    """Each entry ``name:<64 hex digits>`` (connectors/clickhouse/http_auth.py reads them)."""
    entries = [e.strip() for e in text.split(",") if e.strip()]
    return all(re.fullmatch(r"[^:\s]+:[0-9a-fA-F]{64}", entry) for entry in entries)


def env_name(field: str) -> str:
    """The environment variable that sets ``field``: ``usage_partitions`` -> ``RAILYARD_USAGE_PARTITIONS``."""
    return f"{ENV_PREFIX}{field.upper()}"


def _listing(problems: list[str]) -> str:
    return "invalid settings:\n  - " + "\n  - ".join(problems)


def _env_text(value: object) -> str:
    """A value in the form its environment variable takes."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, frozenset):
        return ",".join(stage for stage in Stage if stage in value)  # pipeline order
    return str(value)  # str, int, Path, and a StrEnum's value


def _shown(secret: SecretStr) -> str:
    """A secret as logs may show it: a URL without its password, anything else masked."""
    text = secret.get_secret_value()
    return _redact(text) if "://" in text or not text else "***"


def _redact(url: str) -> str:
    """A URL with its password masked."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url
