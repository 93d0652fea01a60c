"""Retry policy: exponential ceilings, full jitter, Retry-After floors, and when to give up."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.rails.backoff import RetryPolicy
from connectors.rails.config import RailConfig
from streams.domain.errors import ConfigError

POLICY = RetryPolicy(base=1.0, cap=60.0, max_attempts=8, horizon=600.0)


def test_ceiling_doubles_from_base_up_to_the_cap() -> None:
    assert [POLICY.ceiling(a) for a in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]


def test_ceiling_of_a_huge_attempt_is_the_cap_not_an_overflow() -> None:
    assert POLICY.ceiling(10_000) == 60.0


def test_full_jitter_spans_zero_to_the_ceiling() -> None:
    assert POLICY.delay(3, rand=lambda: 0.0) == 0.0
    assert POLICY.delay(3, rand=lambda: 0.5) == 2.0
    assert POLICY.delay(3, rand=lambda: 1.0) == 4.0


@given(st.integers(1, 200), st.floats(0, 1, exclude_max=True))
def test_delay_never_exceeds_the_ceiling_nor_goes_negative(attempt: int, r: float) -> None:
    assert 0.0 <= POLICY.delay(attempt, rand=lambda: r) <= POLICY.ceiling(attempt)


def test_retry_after_is_a_floor() -> None:
    assert POLICY.delay(1, retry_after=30.0, rand=lambda: 0.1) == 30.0
    assert POLICY.delay(7, retry_after=1.0, rand=lambda: 1.0) == 60.0


def test_gives_up_after_max_attempts() -> None:
    assert not POLICY.gives_up(7, elapsed=10, next_delay=1)
    assert POLICY.gives_up(8, elapsed=10, next_delay=1)


def test_gives_up_when_the_next_try_would_start_past_the_horizon() -> None:
    assert not POLICY.gives_up(2, elapsed=590, next_delay=10)
    assert POLICY.gives_up(2, elapsed=590, next_delay=10.5)


def test_from_config_reads_durations_and_counts() -> None:
    config = RailConfig(
        "stripe",
        {
            "retry_base": "250ms",
            "retry_cap": "2m",
            "retry_max_attempts": "5",
            "retry_horizon": "36h",
        },
    )
    assert RetryPolicy.from_config(config) == RetryPolicy(0.25, 120.0, 5, 36 * 3600.0)


def test_the_horizons_older_name_is_read_when_the_new_one_is_unset() -> None:
    old = RailConfig("stripe", {"retry_max_elapsed": "1h"})
    assert RetryPolicy.from_config(old).horizon == 3600.0
    both = RailConfig("stripe", {"retry_max_elapsed": "1h", "retry_horizon": "2h"})
    assert RetryPolicy.from_config(both).horizon == 7200.0


def test_from_config_defaults_without_settings() -> None:
    assert RetryPolicy.from_config(RailConfig("stripe", {})) == RetryPolicy()


def test_defaults_are_what_docs_rails_md_promises() -> None:
    assert RetryPolicy() == RetryPolicy(base=1.0, cap=300.0, max_attempts=None, horizon=86400.0)


def test_by_default_no_count_of_attempts_gives_up_within_the_horizon() -> None:
    policy = RetryPolicy()
    # A day of failures 5 minutes apart is ~288 attempts; a thousand do not give up either.
    assert not policy.gives_up(1000, elapsed=23 * 3600, next_delay=300)
    assert policy.gives_up(1000, elapsed=24 * 3600 - 299, next_delay=300)


def test_a_ten_minute_outage_is_well_inside_the_default_horizon() -> None:
    policy, elapsed, attempt = RetryPolicy(), 0.0, 0
    while elapsed < 600:
        attempt += 1
        delay = policy.delay(attempt, rand=lambda: 1.0)
        assert not policy.gives_up(attempt, elapsed, delay)
        elapsed += delay
    assert policy.ceiling(attempt) <= 300.0


def test_from_config_lists_every_problem_at_once() -> None:
    config = RailConfig(
        "stripe", {"retry_base": "soon", "retry_max_attempts": "0", "retry_cap": "1ms"}
    )
    with pytest.raises(ConfigError) as err:
        RetryPolicy.from_config(config)
    text = str(err.value)
    assert "retry_base" in text and "retry_max_attempts" in text and "retry_cap" in text
