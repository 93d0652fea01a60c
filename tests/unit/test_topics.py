"""Every topic's retention and cleanup policy (connectors/kafka/topics.py), and the settings
check that keeps them long enough for the stages that rebuild from them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from connectors.kafka import topics
from connectors.kafka.topics import FOREVER, TopicSpec, rail_topic_specs, topic_specs
from streams.cli.stack import _retention
from streams.domain.window_replay import REPLAY_HORIZON
from streams.domain.windows import WindowSize
from streams.settings import Settings

RAILS = {"stripe", "netsuite"}


def all_specs(settings: Settings) -> list[TopicSpec]:
    return topic_specs(settings) + rail_topic_specs(settings, RAILS)


def spec(settings: Settings, base: str) -> TopicSpec:
    (found,) = [s for s in all_specs(settings) if s.name == topics.topic_name(settings, base)]
    return found


def declared_names() -> set[str]:
    """Every topic name constant in the module (``invoices.<rail>`` aside)."""
    return {
        value
        for name, value in vars(topics).items()
        if name.isupper()
        and isinstance(value, str)
        and name not in ("FOREVER",)
        and not name.endswith("_PREFIX")
    }


def test_every_declared_topic_has_a_spec() -> None:
    names = [s.name for s in topic_specs(Settings())]
    assert sorted(names) == sorted(declared_names())
    assert len(names) == len(set(names))


@pytest.mark.parametrize("prefix", ["", "t1234."])
def test_every_topic_states_its_policy_retention_and_why(prefix: str) -> None:
    for s in all_specs(Settings(topic_prefix=prefix)):
        assert s.name.startswith(prefix)
        assert s.config["cleanup.policy"] in ("delete", "compact"), s.name
        assert s.config["retention.ms"] == FOREVER or int(s.config["retention.ms"]) > 0, s.name
        assert s.config["retention.bytes"] == FOREVER, f"{s.name} is bounded by time, not size"
        assert s.why.strip() and "\n" not in s.why and len(s.why) <= 110, s.name


@pytest.mark.parametrize(
    "base", [topics.BILLING_BOOK, topics.INVOICES, topics.CATALOG, topics.USAGE_UNATTRIBUTED]
)
def test_state_and_records_never_expire(base: str) -> None:
    found = spec(Settings(), base)
    assert found.retention is None
    assert found.config["retention.ms"] == FOREVER


def test_the_billing_book_is_compacted_and_invoices_are_not() -> None:
    # Invoices are keyed by customer: compaction would keep only each one's last invoice.
    assert spec(Settings(), topics.BILLING_BOOK).cleanup_policy == "compact"
    assert spec(Settings(), topics.INVOICES).cleanup_policy == "delete"
    for rail in rail_topic_specs(Settings(), RAILS):
        assert (rail.cleanup_policy, rail.retention) == ("delete", None)


def test_audit_records_never_expire() -> None:
    kept = {s.name for s in topic_specs(Settings()) if s.retention is None}
    assert kept >= {topics.INVOICES_STATUS, topics.INVOICES_DLQ, topics.CREDIT_EVENTS}


@pytest.mark.parametrize("size", list(WindowSize))
@pytest.mark.parametrize(
    "lateness", [timedelta(0), timedelta(minutes=30), timedelta(hours=6), timedelta(days=3)]
)
@pytest.mark.parametrize("skew", [timedelta(0), timedelta(hours=1), timedelta(hours=12)])
@pytest.mark.parametrize("stream", [timedelta(hours=1), timedelta(days=7), timedelta(days=30)])
def test_attributed_usage_outlives_what_the_window_stage_rebuilds(
    size: WindowSize, lateness: timedelta, skew: timedelta, stream: timedelta
) -> None:
    settings = Settings(
        window_size=size,
        allowed_lateness=lateness,
        max_clock_skew=skew,
        stream_retention=stream,
    )
    retention = spec(settings, topics.USAGE_ATTRIBUTED).retention
    assert retention is not None
    assert retention > size.duration + lateness + REPLAY_HORIZON + skew
    assert retention >= settings.min_stream_retention
    assert retention >= stream  # never shorter than asked, even when settings went unchecked


@pytest.mark.parametrize("age", [timedelta(days=1), timedelta(days=40), timedelta(days=400)])
@pytest.mark.parametrize("skew", [timedelta(0), timedelta(hours=1), timedelta(days=1)])
def test_the_dedup_log_covers_the_event_age_and_the_clock_skew(
    age: timedelta, skew: timedelta
) -> None:
    settings = Settings(max_event_age=age, max_clock_skew=skew)
    for base in (topics.USAGE_DEDUP_LOG, topics.USAGE_DLQ):
        retention = spec(settings, base).retention
        assert retention is not None and retention > age + skew, base


def test_bounded_stream_topics_keep_the_stream_retention() -> None:
    settings = Settings(stream_retention=timedelta(days=14))
    for base in (
        topics.USAGE,
        topics.USAGE_ACCEPTED,
        topics.USAGE_WINDOWS,
        topics.USAGE_LATE,
        topics.BILLING_SPEND,
        topics.BILLING_COMMANDS,
    ):
        assert spec(settings, base).retention == timedelta(days=14), base


def test_usage_retention_counts_from_arrival() -> None:
    assert spec(Settings(), topics.USAGE).config["message.timestamp.type"] == "LogAppendTime"


def test_compacted_topics_keep_revisions_as_long_as_stream_topics_keep_records() -> None:
    settings = Settings(stream_retention=timedelta(days=9))
    for base in (topics.CATALOG, topics.USAGE_UNATTRIBUTED):
        config = spec(settings, base).config
        assert config["min.compaction.lag.ms"] == str(9 * 86_400_000), base
        assert config["delete.retention.ms"] == str(9 * 86_400_000), base


# -- settings ----------------------------------------------------------------------------


def test_the_default_stream_retention_is_valid() -> None:
    assert Settings().stream_retention >= Settings().min_stream_retention
    assert not [p for p in Settings().problems() if "RETENTION" in p]


@pytest.mark.parametrize(
    ("size", "lateness", "needed"),
    [
        (WindowSize.MINUTE, timedelta(0), timedelta(days=2, hours=1, minutes=1)),
        (WindowSize.HOUR, timedelta(minutes=30), timedelta(days=2, hours=2, minutes=30)),
        (WindowSize.DAY, timedelta(days=2), timedelta(days=5, hours=1)),
    ],
)
def test_a_stream_retention_shorter_than_the_window_rebuild_is_rejected(
    size: WindowSize, lateness: timedelta, needed: timedelta
) -> None:
    settings = Settings(window_size=size, allowed_lateness=lateness)
    assert settings.min_stream_retention == needed
    assert not [p for p in settings.with_(stream_retention=needed).problems() if "RETENTION" in p]
    short = settings.with_(stream_retention=needed - timedelta(seconds=1)).problems()
    (problem,) = [p for p in short if "RAILYARD_STREAM_RETENTION" in p]
    assert "usage.attributed" in problem and str(needed) in problem


def test_stream_retention_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAILYARD_STREAM_RETENTION", "30d")
    assert Settings().stream_retention == timedelta(days=30)
    assert Settings().to_env()["RAILYARD_STREAM_RETENTION"] == "2592000s"


@pytest.mark.parametrize(
    ("ms", "shown"),
    [
        ("-1", "forever"),
        ("604800000", "7d"),
        ("3546000000", "41d 1h"),
        ("1000", "1s"),
        ("250", "250ms"),
        (None, "None"),
    ],
)
def test_retention_is_shown_for_people(ms: str | None, shown: str) -> None:
    assert _retention(ms) == shown
