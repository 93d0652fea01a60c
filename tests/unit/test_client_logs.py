"""A broker outage is one warning and a summary a minute, not a line per retry."""

from __future__ import annotations

import logging

from connectors.kafka.client_logs import REPEAT_EVERY_S, OnceWhileDown

REFUSED = "FAIL [rdkafka#consumer-1] 127.0.0.1:9092/bootstrap: Connect to ipv4#127.0.0.1:9092 failed: Connection refused"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def record(text: str, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord("railyard.kafka", level, __file__, 1, text, None, None)


def test_an_outage_is_one_warning_then_a_summary_a_minute(caplog: object) -> None:
    clock = Clock()
    quiet = OnceWhileDown(clock)
    first = record(REFUSED)
    assert quiet.filter(first) and first.levelno == logging.WARNING
    assert first.getMessage().startswith("broker unreachable, retrying with backoff")
    passed = 0
    for _ in range(1_700):  # a minute of librdkafka's retries, less a little
        clock.now += (REPEAT_EVERY_S - 1) / 1_700
        passed += quiet.filter(record(REFUSED))
    assert passed == 0 and quiet.held == 1_700
    clock.now += 2
    summary = record(REFUSED)
    assert quiet.filter(summary)
    assert "still unreachable after 61 s (1701 retries not logged)" in summary.getMessage()


def test_the_broker_coming_back_is_said_and_resets(caplog: object) -> None:
    clock = Clock()
    quiet = OnceWhileDown(clock)
    quiet.filter(record(REFUSED))
    clock.now += 5
    back = record("Group coordinator 127.0.0.1:9092 is up", logging.INFO)
    assert quiet.filter(back) and quiet.since is None
    again = record(REFUSED)
    assert quiet.filter(again), "a new outage is a new warning"


def test_other_lines_pass_untouched() -> None:
    quiet = OnceWhileDown(Clock())
    line = record("Committed offsets", logging.INFO)
    assert quiet.filter(line) and line.levelno == logging.INFO
    assert line.getMessage() == "Committed offsets"
