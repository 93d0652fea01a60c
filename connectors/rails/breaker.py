"""A rail's circuit breaker: stop calling a rail that is down, probe it, resume when it answers.

Pure: every method takes the time (monotonic seconds) from the caller's clock.

* **closed**: deliveries go ahead. ``threshold`` consecutive transient failures, or
  one auth failure (the rail refuses our credentials for every invoice), open it.
* **open**: no delivery is attempted; the runner pauses its partitions instead of
  burning the invoices' attempts. After ``cooldown`` seconds it lets one probe through.
* **half-open**: one delivery is in the air as a probe. Success closes the breaker;
  failure opens it again for twice the previous cool-down, up to ``max_cooldown``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from connectors.rails.config import RailConfig
from streams.domain.errors import ConfigError
from streams.settings import parse_duration


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


@dataclass
class CircuitBreaker:
    threshold: int = 5
    """Consecutive transient failures that open the breaker."""
    cooldown: float = 30.0
    """Seconds open before the first probe."""
    max_cooldown: float = 300.0
    """Each failed probe doubles the cool-down, up to this."""
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    """Consecutive failures since the last success."""
    opened_at: float | None = None
    current_cooldown: float = field(default=0.0)
    reason: str = ""
    """Why it opened last (the rail's error, for the log and the status)."""

    @classmethod
    def from_config(cls, config: RailConfig) -> CircuitBreaker:
        """``RAILYARD_RAIL_<RAIL>_BREAKER_{THRESHOLD,COOLDOWN,MAX_COOLDOWN}``, else defaults."""
        d = cls()
        problems: list[str] = []
        threshold = d.threshold
        text = config.get("breaker_threshold")
        if text is not None:
            if text.isdigit() and int(text) >= 1:
                threshold = int(text)
            else:
                problems.append(f"breaker_threshold must be a whole number >= 1, got {text!r}")

        def seconds(key: str, default: float) -> float:
            value = config.get(key)
            try:
                return default if value is None else parse_duration(value).total_seconds()
            except ConfigError as exc:
                problems.append(f"{key}: {exc}")
                return default

        cooldown = seconds("breaker_cooldown", d.cooldown)
        max_cooldown = seconds("breaker_max_cooldown", max(d.max_cooldown, cooldown))
        if cooldown <= 0:
            problems.append("breaker_cooldown must be > 0")
        if max_cooldown < cooldown:
            problems.append("breaker_max_cooldown must be >= breaker_cooldown")
        if problems:
            raise ConfigError(
                f"rail {config.rail} breaker settings:\n  - " + "\n  - ".join(problems)
            )
        return cls(threshold, cooldown, max_cooldown)

    def allows(self, now: float) -> bool:
        """Whether a delivery may be attempted at ``now``; the first one after a cool-down
        turns the breaker half-open and is the probe (no other goes until it reports)."""
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.HALF_OPEN:
            return False
        if now >= self.probe_at():
            self.state = BreakerState.HALF_OPEN
            return True
        return False

    def probe_at(self) -> float:
        """When an open breaker lets its probe through (now, when closed)."""
        if self.state is BreakerState.CLOSED or self.opened_at is None:
            return 0.0
        return self.opened_at + self.current_cooldown

    def succeeded(self) -> bool:
        """A delivery went through; returns whether this closed an open breaker."""
        reopened = self.state is not BreakerState.CLOSED
        self.state, self.failures, self.opened_at, self.reason = BreakerState.CLOSED, 0, None, ""
        self.current_cooldown = 0.0
        return reopened

    def failed(self, now: float, reason: str, *, outage: bool = False) -> bool:
        """A transient failure (or, ``outage``, an auth failure); returns whether it opened
        the breaker just now (a failed probe re-opens it for longer, and also returns True)."""
        self.failures += 1
        if self.state is BreakerState.HALF_OPEN:
            self._open(
                now, reason, min(self.max_cooldown, max(self.cooldown, 2 * self.current_cooldown))
            )
            return True
        if self.state is BreakerState.CLOSED and (outage or self.failures >= self.threshold):
            self._open(now, reason, self.cooldown)
            return True
        return False

    def refused(self) -> None:
        """The rail answered, refusing one invoice: it is up, whatever it thinks of that one."""
        self.succeeded()

    def _open(self, now: float, reason: str, cooldown: float) -> None:
        self.state, self.opened_at, self.current_cooldown, self.reason = (
            BreakerState.OPEN,
            now,
            cooldown,
            reason,
        )
