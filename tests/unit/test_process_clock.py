"""RAILYARD_CLOCK_START: a process clock that starts at a given instant and runs on."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from streams.agents.runtime import process_clock
from streams.domain.errors import ConfigError
from streams.settings import Settings, parse_instant


@pytest.mark.parametrize(
    ("text", "instant"),
    [
        ("2024-02-29T00:00:00Z", datetime(2024, 2, 29, tzinfo=UTC)),
        ("2028-02-29T23:30:00.5+01:00", datetime(2028, 2, 29, 22, 30, 0, 500_000, tzinfo=UTC)),
        (" 2027-01-01t00:00:00z ", datetime(2027, 1, 1, tzinfo=UTC)),
    ],
)
def test_a_clock_start_is_an_rfc3339_instant(text: str, instant: datetime) -> None:
    settings = Settings(clock_start=text)

    assert settings.problems() == []
    assert settings.clock_origin == instant
    assert Settings(clock_start=settings.to_env()["RAILYARD_CLOCK_START"]) == settings


@pytest.mark.parametrize(
    "text", ["2024-02-29", "2024-02-29T00:00:00", "yesterday", "2024-02-30T00:00:00Z"]
)
def test_a_clock_start_without_an_offset_or_not_an_instant_is_refused(text: str) -> None:
    settings = Settings(clock_start=text)

    assert parse_instant(text) is None
    assert settings.clock_origin is None
    [problem] = settings.problems()
    assert problem.startswith("RAILYARD_CLOCK_START") and repr(text) in problem
    with pytest.raises(ConfigError, match="RAILYARD_CLOCK_START"):
        settings.validate()


def test_no_clock_start_is_the_wall_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAILYARD_CLOCK_START", raising=False)
    settings = Settings()

    assert settings.clock_start == "" and settings.clock_origin is None
    assert settings.to_env()["RAILYARD_CLOCK_START"] == ""
    before = datetime.now(UTC)
    read = process_clock(settings.clock_origin)()
    assert before <= read <= datetime.now(UTC)


def test_the_environment_sets_the_clock_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAILYARD_CLOCK_START", "2024-02-29T00:00:00Z")

    assert Settings().clock_origin == datetime(2024, 2, 29, tzinfo=UTC)


def test_an_anchored_clock_starts_at_its_origin_and_advances_with_real_time() -> None:
    origin = datetime(2024, 2, 29, 1, tzinfo=timezone(timedelta(hours=1)))
    clock = process_clock(origin)

    first = clock()
    time.sleep(0.05)
    second = clock()

    assert first.tzinfo is UTC
    assert timedelta(0) <= first - datetime(2024, 2, 29, tzinfo=UTC) < timedelta(seconds=1)
    assert timedelta(milliseconds=50) <= second - first < timedelta(seconds=5)
