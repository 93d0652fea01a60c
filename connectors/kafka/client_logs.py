"""librdkafka's logs, said once: a broker outage is one warning, not a line per retry.

librdkafka retries a refused connection every few tens of milliseconds at first and logs
each attempt (about 1,700 lines a minute from one worker, measured). Every long-running
client routes its logs through :data:`KAFKA_LOG` with :class:`OnceWhileDown`: the first
connection failure is logged as a warning, the repeats are counted and summed up once a
minute, and the next line that is not a connection failure (the broker is back) says how
many were held back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from connectors.metrics import BROKER_CONNECTION_FAILURES

KAFKA_LOG = logging.getLogger("railyard.kafka")
REPEAT_EVERY_S = 60.0
"""While the broker stays away, one summary line this often."""
_DOWN_MARKERS = (
    "Connection refused",
    "Connect to ",
    "failed: ",
    "Disconnected",
    "timed out",
    "NodeNotReadyError",
)


class OnceWhileDown(logging.Filter):
    """Passes the first connection failure and a summary a minute; drops the repeats."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.clock = clock
        self.held = 0
        self.since: float | None = None
        self.said_at = 0.0

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        now = self.clock()
        if any(marker in text for marker in _DOWN_MARKERS):
            BROKER_CONNECTION_FAILURES.inc()  # every one, held back from the log or not
            if self.since is None:
                self.since, self.said_at, self.held = now, now, 0
                record.msg, record.args = "broker unreachable, retrying with backoff: %s", (text,)
                record.levelno, record.levelname = logging.WARNING, "WARNING"
                return True
            self.held += 1
            if now - self.said_at < REPEAT_EVERY_S:
                return False
            self.said_at = now
            record.msg = "broker still unreachable after %.0f s (%d retries not logged): %s"
            record.args = (now - self.since, self.held, text)
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            return True
        if self.since is not None:
            KAFKA_LOG.info(
                "broker reachable again after %.0f s (%d retries not logged)",
                now - self.since,
                self.held,
            )
            self.since = None
        return True


KAFKA_LOG.addFilter(OnceWhileDown())
for _name in ("aiokafka", "aiokafka.consumer.fetcher"):
    # Faust's client logs each refused reconnect (~30 a second) and each fetch from the
    # missing node as an error; a filter holds for the logger it is on only.
    logging.getLogger(_name).addFilter(OnceWhileDown())


def quiet_client_config() -> dict[str, Any]:
    """Settings every long-running confluent-kafka client takes: its logs through
    :data:`KAFKA_LOG` (served by its poll calls) and a reconnect backoff that grows to 10 s."""
    return {"logger": KAFKA_LOG, "reconnect.backoff.ms": 250, "reconnect.backoff.max.ms": 10_000}
