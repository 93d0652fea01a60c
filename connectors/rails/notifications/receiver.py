"""``railyard rails listen RAIL``: the endpoint a rail posts its payment notifications to.

One request at a time (``http.server.HTTPServer``, single-threaded), so checking an
event id and recording it cannot race. For each POST:

1. the rail's signature is verified (:mod:`verify`); a forged or stale one is
   answered 401 and logged with its reason, never with the body, headers or secret;
   a body that is not the rail's notification is answered 400;
2. each notification is mapped to a payment status (:mod:`mapping`) and its invoice
   found among those the rail holds (:class:`~ledger.Ledger`, rebuilt from
   ``invoices.status``; re-read once when the invoice is not known yet, since the
   runner may have delivered it since);
3. an event id already on ``invoices.status`` is acknowledged and published never
   again, so a replay, a rail's redelivery or a restart changes nothing;
4. the status step is published to ``invoices.status`` keyed by the invoice id and
   acknowledged by the broker before the rail is answered, so a notification the
   rail saw accepted is never lost (a failure answers 503 and the rail retries).

Answers: Adyen wants ``[accepted]``; Stripe and PayPal any 2xx.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from confluent_kafka import Consumer

from connectors.kafka import topics
from connectors.kafka.consumed import value_of
from connectors.kafka.replay import read_partition
from connectors.metrics import INVOICE_PAYMENTS
from connectors.rails.config import RailConfig
from connectors.rails.notifications.ledger import Ledger, notification_record
from connectors.rails.notifications.mapping import MAPPERS, NotificationError
from connectors.rails.notifications.verify import Forged, Malformed, Verifier, verifier
from connectors.rails.status_feed import StatusPublisher
from streams.domain.errors import ConfigError, RailyardError
from streams.settings import Settings
from streams.wire.records import INVOICE_STATUS

log = logging.getLogger(__name__)

ACCEPTED = {"adyen": b"[accepted]"}
"""The body each rail expects on success; the others get ``ok``."""


def _status_steps(settings: Settings) -> Iterator[dict[str, Any]]:
    topic = topics.topic_name(settings, topics.INVOICES_STATUS)
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka_bootstrap, "group.id": "railyard-listen"}
    )
    try:
        meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
        partitions = sorted(meta.partitions) if meta is not None and meta.error is None else []
    finally:
        consumer.close()
    for partition in partitions:
        for msg in read_partition(settings.kafka_bootstrap, topic, partition):
            yield INVOICE_STATUS.decode(value_of(msg))


class Outcome:
    """What one POST did, for the HTTP answer and the tests."""

    def __init__(self, code: int, published: int = 0, duplicates: int = 0, unknown: int = 0):
        self.code, self.published, self.duplicates, self.unknown = (
            code,
            published,
            duplicates,
            unknown,
        )


class NotificationReceiver:
    """Verifies, de-duplicates and publishes one rail's notifications."""

    def __init__(
        self,
        settings: Settings,
        config: RailConfig,
        clock: Callable[[], datetime],
        *,
        verify: Verifier | None = None,
    ) -> None:
        if config.rail not in MAPPERS:
            raise ConfigError(f"rail {config.rail}: no notifications to listen for")
        self.settings, self.config, self.clock = settings, config, clock
        self.rail = config.rail
        self.verify = verify or verifier(config)
        self.map = MAPPERS[self.rail]
        self.statuses = StatusPublisher(settings, config.rail)
        self.ledger = self._read_ledger()
        self.lock = threading.Lock()

    def _read_ledger(self) -> Ledger:
        return Ledger(self.rail).add_all(_status_steps(self.settings))

    def handle(self, body: bytes, headers: dict[str, str]) -> Outcome:
        """One POST; ``headers`` with lower-case names."""
        try:
            event = self.verify(body, headers)
            notes = self.map(event)
        except Forged as exc:
            log.warning("%s notification rejected: %s", self.rail, self.config.redact(str(exc)))
            return Outcome(401)
        except (Malformed, NotificationError) as exc:
            log.warning("%s notification refused: %s", self.rail, self.config.redact(str(exc)))
            return Outcome(400)
        except RailyardError as exc:  # the rail's verification API failed: let it retry
            log.error("%s notification not verified: %s", self.rail, self.config.redact(str(exc)))
            return Outcome(503)
        with self.lock:
            return self._record(notes)

    def _record(self, notes: list[Any]) -> Outcome:
        outcome = Outcome(200)
        refreshed = False
        for note in notes:
            if note.event_id in self.ledger.seen:
                outcome.duplicates += 1
                log.info("%s event %s already recorded", self.rail, note.event_id)
                continue
            known = self.ledger.resolve(note.refs)
            if known is None and not refreshed:
                self.ledger, refreshed = self._read_ledger(), True
                if note.event_id in self.ledger.seen:
                    outcome.duplicates += 1
                    continue
                known = self.ledger.resolve(note.refs)
            if known is None:
                # Not an invoice of ours (or not delivered through this rail): nothing to
                # record, and a retry would not change that, so it is acknowledged.
                outcome.unknown += 1
                log.warning(
                    "%s event %s (%s) names no invoice delivered through %s",
                    self.rail,
                    note.event_id,
                    note.event_type,
                    self.rail,
                )
                continue
            record = notification_record(note, known, self.clock())
            if not self.statuses.publish(known.invoice_id, record):
                outcome.code = 503
                return outcome
            self.ledger.add(record)
            INVOICE_PAYMENTS.labels(self.rail, str(note.status)).inc()
            outcome.published += 1
            log.info("%s %s: invoice %s is %s", self.rail, note.event_id, known.number, note.status)
        return outcome

    def close(self) -> None:
        self.statuses.close()


def serve(receiver: NotificationReceiver, port: int = 0, host: str = "127.0.0.1") -> HTTPServer:
    """An HTTP server for ``receiver`` on ``host:port`` (0: any free port), not yet serving."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # the receiver logs what matters, without the request line's details

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            outcome = receiver.handle(body, headers)
            answer = ACCEPTED.get(receiver.rail, b"ok") if outcome.code == 200 else b"not accepted"
            self.send_response(outcome.code)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    return HTTPServer((host, port), Handler)
