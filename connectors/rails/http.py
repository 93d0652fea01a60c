"""What the HTTP-speaking rails share: a session that always times out, and the one rule
that turns a rail's HTTP answer into a retry or a dead letter."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from connectors.rails.base import PermanentRailError, TransientRailError


def is_transient(status: int) -> bool:
    """429 and 5xx are worth retrying; any other refusal would fail the same way again."""
    return status == 429 or status >= 500


def classify(
    message: str, code: str, status: int, headers: Mapping[str, Any], *, transient: bool = False
) -> TransientRailError | PermanentRailError:
    """A transient error (honouring ``Retry-After`` seconds) or a permanent one.

    ``transient`` forces a retry for answers a rail marks retryable some other way.
    """
    if transient or is_transient(status):
        retry = headers.get("Retry-After")
        seconds = float(retry) if isinstance(retry, str) and retry.isdigit() else None
        return TransientRailError(message, code=code, retry_after=seconds, status=status)
    return PermanentRailError(message, code=code, status=status)


class RailSession(requests.Session):
    """A session with a default timeout (SDKs built on requests often pass none) and a CA
    bundle that wins over ``REQUESTS_CA_BUNDLE``, which requests would otherwise prefer."""

    def __init__(self, timeout: float, ca_bundle: str | None = None) -> None:
        super().__init__()
        self.timeout = timeout
        if ca_bundle:
            self.verify = ca_bundle

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        kwargs.setdefault("verify", self.verify)
        return super().request(*args, **kwargs)
