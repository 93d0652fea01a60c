"""The per-rail circuit breaker, on a fixed clock: opens, waits, probes, closes."""

from __future__ import annotations

import pytest

from connectors.rails.breaker import BreakerState, CircuitBreaker
from connectors.rails.config import RailConfig
from streams.domain.errors import ConfigError


def tripped(at: float = 100.0) -> CircuitBreaker:
    breaker = CircuitBreaker(threshold=3, cooldown=30.0, max_cooldown=100.0)
    for _ in range(3):
        breaker.failed(at, "503")
    return breaker


def test_stays_closed_below_the_threshold_and_a_success_resets_the_count() -> None:
    breaker = CircuitBreaker(threshold=3, cooldown=30.0)
    assert not breaker.failed(0.0, "503") and not breaker.failed(1.0, "503")
    assert breaker.succeeded() is False
    assert not breaker.failed(2.0, "503") and not breaker.failed(3.0, "503")
    assert breaker.state is BreakerState.CLOSED and breaker.allows(3.0)


def test_opens_after_threshold_consecutive_failures_and_refuses_until_the_cooldown() -> None:
    breaker = tripped(at=100.0)
    assert breaker.state is BreakerState.OPEN and breaker.reason == "503"
    assert not breaker.allows(100.0)
    assert not breaker.allows(129.9)
    assert breaker.probe_at() == 130.0


def test_one_probe_after_the_cooldown_then_none_until_it_reports() -> None:
    breaker = tripped(at=100.0)
    assert breaker.allows(130.0)
    assert breaker.state is BreakerState.HALF_OPEN
    assert not breaker.allows(130.0) and not breaker.allows(500.0)


def test_a_successful_probe_closes_it() -> None:
    breaker = tripped()
    assert breaker.allows(130.0)
    assert breaker.succeeded() is True
    assert breaker.state is BreakerState.CLOSED and breaker.failures == 0
    assert breaker.allows(130.0) and breaker.allows(130.0)


def test_a_failed_probe_reopens_for_twice_as_long_up_to_the_max() -> None:
    breaker = tripped(at=100.0)
    cooldowns = []
    now = 100.0
    for _ in range(4):
        now = breaker.probe_at()
        assert breaker.allows(now)
        assert breaker.failed(now, "still 503") is True
        cooldowns.append(breaker.probe_at() - now)
    assert cooldowns == [60.0, 100.0, 100.0, 100.0]
    assert breaker.state is BreakerState.OPEN


def test_one_auth_failure_opens_it_at_once() -> None:
    breaker = CircuitBreaker(threshold=5, cooldown=30.0)
    assert breaker.failed(10.0, "401 invalid api key", outage=True) is True
    assert breaker.state is BreakerState.OPEN and not breaker.allows(39.0)
    assert breaker.allows(40.0)


def test_a_refusal_shows_the_rail_is_up() -> None:
    breaker = CircuitBreaker(threshold=2)
    breaker.failed(0.0, "503")
    breaker.refused()
    assert not breaker.failed(1.0, "503")
    assert breaker.state is BreakerState.CLOSED


def test_from_config_and_defaults() -> None:
    assert CircuitBreaker.from_config(RailConfig("stripe", {})) == CircuitBreaker()
    config = RailConfig(
        "stripe",
        {"breaker_threshold": "10", "breaker_cooldown": "1m", "breaker_max_cooldown": "10m"},
    )
    assert CircuitBreaker.from_config(config) == CircuitBreaker(10, 60.0, 600.0)
    # A cool-down above the default maximum raises the maximum with it.
    longer = CircuitBreaker.from_config(RailConfig("stripe", {"breaker_cooldown": "10m"}))
    assert longer.max_cooldown == 600.0


def test_from_config_lists_every_problem_at_once() -> None:
    config = RailConfig(
        "stripe",
        {"breaker_threshold": "0", "breaker_cooldown": "soon", "breaker_max_cooldown": "1ms"},
    )
    with pytest.raises(ConfigError) as err:
        CircuitBreaker.from_config(config)
    text = str(err.value)
    assert "breaker_threshold" in text and "breaker_cooldown" in text
    assert "breaker_max_cooldown" in text
