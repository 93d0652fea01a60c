"""The root of every Railyard error.

Every failure is either *drop* (the record goes to a dead-letter topic with a
reason, see :class:`streams.domain.rejections.Reason`) or *retry* (back off and
try again); these exceptions are for the second kind and for misconfiguration.
"""


class RailyardError(Exception):
    """Root of all Railyard exceptions."""


class ConfigError(RailyardError):
    """A setting or a file the user wrote is invalid; the message lists every problem."""


class StackError(RailyardError):
    """The local Kafka broker could not be started, reached or stopped."""


class StoreError(RailyardError):
    """ClickHouse refused a statement or could not be reached."""
