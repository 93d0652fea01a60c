"""When to try a rail again: exponential backoff with full jitter, within limits.

Full jitter (a uniform draw between zero and the exponential ceiling) spreads the
retries of many invoices that failed together, so a rail coming back from an
outage is not hit by all of them at the same instant. A rail's own ``Retry-After``
is a floor: the connector never comes back sooner than the rail asked.

The limit is a horizon in time, not a count of attempts: a rail down for an
afternoon costs retries, never invoices. By default an invoice is retried for
24 hours, at most 5 minutes apart, however many attempts that takes.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from connectors.rails.config import RailConfig
from streams.domain.errors import ConfigError
from streams.settings import parse_duration


@dataclass(frozen=True)
class RetryPolicy:
    """How transient failures of one rail are retried.

    An invoice is given up on (recorded ``failed`` and dead-lettered) once its next
    try would start more than ``horizon`` seconds after its first attempt, or, only
    when ``max_attempts`` is set, after that many attempts.
    """

    base: float = 1.0
    """Ceiling of the first retry's delay, in seconds; it doubles with each attempt."""
    cap: float = 300.0
    """The ceiling never grows past this many seconds."""
    max_attempts: int | None = None
    """No limit by default: the horizon decides."""
    horizon: float = 24 * 3600.0

    @classmethod
    def from_config(cls, config: RailConfig) -> RetryPolicy:
        """``RAILYARD_RAIL_<RAIL>_RETRY_{BASE,CAP,HORIZON,MAX_ATTEMPTS}``, else defaults.

        ``RETRY_MAX_ELAPSED``, the horizon's older name, is read when ``RETRY_HORIZON``
        is not set.
        """
        d = cls()
        problems: list[str] = []

        def seconds(key: str, default: float) -> float:
            text = config.get(key)
            try:
                return default if text is None else parse_duration(text).total_seconds()
            except ConfigError as exc:
                problems.append(f"{key}: {exc}")
                return default

        attempts_text = config.get("retry_max_attempts")
        attempts = d.max_attempts
        if attempts_text is not None:
            if attempts_text.isdigit() and int(attempts_text) >= 1:
                attempts = int(attempts_text)
            else:
                problems.append(
                    f"retry_max_attempts must be a whole number >= 1, got {attempts_text!r}"
                )
        horizon_key = "retry_horizon" if config.get("retry_horizon") else "retry_max_elapsed"
        policy = cls(
            base=seconds("retry_base", d.base),
            cap=seconds("retry_cap", d.cap),
            max_attempts=attempts,
            horizon=seconds(horizon_key, d.horizon),
        )
        problems.extend(policy.problems())
        if problems:
            raise ConfigError(f"rail {config.rail} retry settings:\n  - " + "\n  - ".join(problems))
        return policy

    def problems(self) -> list[str]:
        out = []
        if self.base <= 0:
            out.append("retry_base must be > 0")
        if self.cap < self.base:
            out.append("retry_cap must be >= retry_base")
        if self.max_attempts is not None and self.max_attempts < 1:
            out.append("retry_max_attempts must be >= 1")
        if self.horizon < 0:
            out.append("retry_horizon must be >= 0")
        return out

    def ceiling(self, attempt: int) -> float:
        """Upper bound of the delay after failed attempt number ``attempt`` (1-based)."""
        # Bounded exponent: 2**1000 would overflow a float long before the cap applies.
        return float(min(self.cap, self.base * 2 ** min(attempt - 1, 62)))

    def delay(
        self,
        attempt: int,
        retry_after: float | None = None,
        rand: Callable[[], float] = random.random,
    ) -> float:
        """Seconds to wait after failed attempt ``attempt``: full jitter, floored by ``retry_after``."""
        jittered = rand() * self.ceiling(attempt)
        return max(jittered, retry_after or 0.0)

    def gives_up(self, attempts: int, elapsed: float, next_delay: float) -> bool:
        """Whether, after ``attempts`` failures spanning ``elapsed`` s, no retry is left.

        A retry that would start past the ``horizon`` is not made: the invoice is
        recorded failed now rather than after one more pointless wait.
        """
        if self.max_attempts is not None and attempts >= self.max_attempts:
            return True
        return elapsed + next_delay > self.horizon
