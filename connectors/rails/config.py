"""A rail's settings and secrets, from the environment or from secret files.

``RAILYARD_RAIL_<RAIL>_<KEY>`` holds a value; ``RAILYARD_RAIL_<RAIL>_<KEY>_FILE``
names a file holding it (Docker/Kubernetes secrets), which wins. Secrets are
read through :meth:`RailConfig.secret` as a :class:`~pydantic.SecretStr`, which a
rail unwraps (``get_secret_value()``) only where it sends the value, and never
appear in ``repr``, logs or error messages.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from streams.domain.errors import ConfigError

SECRET_WORDS = ("secret", "key", "token", "password", "credential", "private")
"""A config key containing one of these holds a secret: :meth:`RailConfig.redact` masks it."""


@dataclass(frozen=True)
class RailConfig:
    """One rail's settings; values are kept out of ``repr`` (only the key names show)."""

    rail: str
    values: Mapping[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(cls, rail: str, environ: Mapping[str, str] | None = None) -> RailConfig:
        env = os.environ if environ is None else environ
        prefix = f"RAILYARD_RAIL_{rail.upper().replace('-', '_')}_"
        values: dict[str, str] = {}
        for name, value in env.items():
            if not name.startswith(prefix):
                continue
            key = name[len(prefix) :].lower()
            if key.endswith("_file"):
                try:
                    values[key[: -len("_file")]] = Path(value).read_text().strip()
                except OSError as exc:
                    raise ConfigError(f"{name}: cannot read secret file: {exc.strerror}") from exc
            else:
                values.setdefault(key, value)
        return cls(rail, values)

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.values.get(key, default)

    def require(self, key: str) -> str:
        value = self.values.get(key)
        if not value:
            env = f"RAILYARD_RAIL_{self.rail.upper()}_{key.upper()}"
            raise ConfigError(f"rail {self.rail}: set {env} (or {env}_FILE)")
        return value

    def secret(self, key: str) -> SecretStr:
        """Like :meth:`require`, masked until the rail unwraps it to send it."""
        return SecretStr(self.require(key))

    def optional_secret(self, key: str) -> SecretStr | None:
        """Like :meth:`secret`; None when the key is not set."""
        value = self.values.get(key)
        return SecretStr(value) if value else None

    def redact(self, text: str) -> str:
        """``text`` with the value of every secret-looking key masked.

        The connector passes every error message through this before it is logged
        or published, as a second line of defence behind rails that word their
        messages from the rail's answer only.
        """
        for key, value in self.values.items():
            if len(value) >= 4 and any(word in key for word in SECRET_WORDS):
                text = text.replace(value, "***")
        return text

    def to_env(self) -> dict[str, str]:
        """``RAILYARD_RAIL_*`` variables that rebuild this config in a child process."""
        prefix = f"RAILYARD_RAIL_{self.rail.upper().replace('-', '_')}_"
        return {f"{prefix}{key.upper()}": value for key, value in self.values.items()}

    def __repr__(self) -> str:
        return f"RailConfig(rail={self.rail!r}, keys={sorted(self.values)})"
