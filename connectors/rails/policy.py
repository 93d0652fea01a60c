"""One retry policy for every rail: what a failed delivery means, decided in one table.

Each rail module raises :class:`~connectors.rails.base.TransientRailError` or
:class:`~connectors.rails.base.PermanentRailError`; rails used to disagree on the
same answer (401 retried by one, dead-lettered by five). The runner now decides
here, from what the error carries (its HTTP status and code), so one answer means
the same on every rail:

=====================================  ===========  =====================================
what the rail answered                 verdict      what the runner does
=====================================  ===========  =====================================
401, 403                               ``outage``   the rail's credentials are wrong for
                                                    every invoice: open the circuit
                                                    breaker, pause, never dead-letter
408, 425, 429, any 5xx                 ``retry``    back off and try again
a throttling code (whatever status)    ``retry``    back off and try again
any other 4xx                          ``refuse``   dead-letter, unless the rail marked it
                                                    transient (a lock, a key in use)
no status: a transient error           ``retry``    timeouts, refused or reset connections
no status: a permanent error           ``refuse``   refused before sending (validation)
an exception that is not a RailError   ``retry``    a bug or an unclassified network error
=====================================  ===========  =====================================

Pure: no I/O, no clock. The status is the error's ``status`` when the rail set it,
else read from a ``http_<status>`` or all-digit code, else from the client
library's exception the rail error was raised over (``http_status``, ``status_code``
or ``status`` on it or on its ``response``), so rails that predate ``status`` are
classified the same way.
"""

from __future__ import annotations

import re
from enum import StrEnum

from connectors.rails.base import PermanentRailError, RailError, TransientRailError

AUTH_STATUSES = frozenset({401, 403})
"""The rail does not accept our credentials: true of every invoice, not of this one."""
RETRY_STATUSES = frozenset({408, 425, 429})
"""Request timeout, too early, too many requests; with every 5xx, worth another try."""
THROTTLE_CODES = frozenset({"REQUEST_LIMIT_EXCEEDED", "rate_limit", "RATE_LIMIT_REACHED"})
"""Rate limits some rails answer with a 4xx other than 429 (Salesforce: 403)."""


class Verdict(StrEnum):
    RETRY = "retry"
    """Transient: back off and try the same invoice again."""
    REFUSE = "refuse"
    """The rail refused this invoice: dead-letter it."""
    OUTAGE = "outage"
    """The rail is unusable for every invoice (credentials): open the breaker and pause."""


_HTTP_CODE = re.compile(r"^(?:http_)?(\d{3})$")


def status_of(exc: BaseException) -> int | None:
    """The HTTP status a failed delivery carries, or None (no answer, or not known)."""
    if isinstance(exc, RailError):
        if exc.status is not None:
            return exc.status
        match = _HTTP_CODE.match(exc.code or "")
        if match:
            return int(match.group(1))
        # ``raise RailError(...) from None`` keeps the library's exception as the context.
        return _status_attribute(exc.__context__)
    return _status_attribute(exc)


def _status_attribute(exc: BaseException | None) -> int | None:
    if exc is None:
        return None
    for holder in (exc, getattr(exc, "response", None)):
        for name in ("http_status", "status_code", "status"):
            value = getattr(holder, name, None)
            if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
                return value
    return None


def classify(exc: BaseException) -> Verdict:
    """The table above, applied to one failed delivery."""
    status = status_of(exc)
    code = exc.code if isinstance(exc, RailError) else None
    if code in THROTTLE_CODES:
        return Verdict.RETRY
    if status in AUTH_STATUSES:
        return Verdict.OUTAGE
    if status is not None and (status in RETRY_STATUSES or status >= 500):
        return Verdict.RETRY
    if isinstance(exc, PermanentRailError):
        return Verdict.REFUSE
    if isinstance(exc, TransientRailError):
        return Verdict.RETRY
    if status is not None and 400 <= status < 500:
        return Verdict.REFUSE
    return Verdict.RETRY
