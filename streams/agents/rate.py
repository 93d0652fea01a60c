"""``rate_windows``: window totals -> running spend, credit alerts and, at period close, invoices.

Consumes ``usage.windows`` and ``usage.late`` (partitioned by customer) and
``billing.commands``. Each partition has a :class:`BillingBook`; all pricing is in
the pure rating package, this module only moves records.

* Every batch re-rates the open period of the customers it touched and sends their
  running spend (and credit balances) to ``billing.spend`` at most once a second per
  partition, so spend is visible in ClickHouse within seconds of the usage.
* Credit threshold and exhaustion alerts go to ``credits.events`` as they happen.
* A period closes when the partition's watermark passes its end plus
  ``RAILYARD_PERIOD_GRACE``, or on ``railyard close-period``: one invoice per
  customer, period and currency goes to ``invoices`` (same partition), never twice.

Every ``RAILYARD_BOOK_CHECKPOINT`` (5 s) a partition's book writes its changes, the
newest per key, to the compacted ``billing.book`` topic (same partition), then a mark
with the input offsets they cover. After a restart the book is rebuilt from
``billing.book`` and the invoices already issued (``invoices``), both kept for good,
plus the few seconds of ``usage.windows`` and ``usage.late`` after the mark, never
from the start of those topics, whose retention may have expired; re-reading input
the book has already folded in changes nothing, so no invoice is issued twice and
no usage is lost. A record the stage cannot read,
or a period the catalog cannot rate, is dead-lettered with its reason
(``usage.dlq``, stage ``rate``) and the stage goes on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Iterable
from dataclasses import asdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import faust
from faust.types import TP, EventT

from connectors.kafka import topics
from connectors.kafka.catalog_feed import CatalogFeed
from connectors.kafka.consumed import position_of, value_of
from connectors.kafka.partitioner import partition_for
from connectors.kafka.replay import read_partition
from connectors.metrics import EVENTS_DEAD_LETTERED, INVOICES_ISSUED, StageProgress
from streams.agents.batching import batch_agent, by_partition, every
from streams.agents.runtime import process_clock
from streams.domain.billing_book import BillingBook, JournalEntry
from streams.domain.catalog import Catalog
from streams.domain.errors import RailyardError
from streams.domain.invoice import Invoice
from streams.domain.rating.credits import CreditEvent
from streams.domain.rejections import Reason, Rejection
from streams.domain.spend import consumed_with_draft, running_spend
from streams.settings import Settings
from streams.wire.book import (
    MARK_KEY,
    Mark,
    UnreadableRecord,
    encode_entry,
    encode_mark,
    entry_key,
    late_changes,
    live_entries,
    window_changes,
)
from streams.wire.codec import encode_dead_letter
from streams.wire.invoices import decode_invoice, encode_invoice
from streams.wire.records import BILLING_COMMANDS, CREDIT_EVENTS, SPEND

log = logging.getLogger("railyard.rate")
SEAL_MARGIN = timedelta(days=1)
"""Beyond the oldest event ingest accepts: usage still in flight through the stages."""
SPEND_INTERVAL_S = 1.0
"""Running spend goes out at most this often per partition: fresh, without a record per batch."""


class RateStage:
    def __init__(self, app: faust.App, settings: Settings, feed: CatalogFeed) -> None:
        self.app = app
        self.settings = settings
        self.feed = feed

        def name(base: str) -> str:
            return topics.topic_name(settings, base)

        self.windows_name = name(topics.USAGE_WINDOWS)
        self.late_name = name(topics.USAGE_LATE)
        self.commands_name = name(topics.BILLING_COMMANDS)
        self.invoices_name = name(topics.INVOICES)
        self.book_name = name(topics.BILLING_BOOK)
        self.dlq = app.topic(name(topics.USAGE_DLQ))
        self.source = app.topic(self.windows_name, self.late_name, self.commands_name)
        self.invoices = app.topic(self.invoices_name)
        self.spend = app.topic(name(topics.BILLING_SPEND))
        self.credit_events = app.topic(name(topics.CREDIT_EVENTS))
        self.partitions = settings.usage_partitions
        self.books: dict[int, BillingBook] = {}
        self.progress = StageProgress("rate", process_clock(settings.clock_origin))
        """The book's watermark: its freshness is how old the newest usage an invoice can see is."""
        self.dirty: dict[int, set[str]] = defaultdict(set)
        self.spent_at: dict[int, float] = {}
        self.sealed_on: dict[int, date] = {}
        self.pending: dict[int, dict[bytes, JournalEntry]] = defaultdict(dict)
        """Book changes not yet checkpointed, newest per key."""
        self.positions: dict[int, Mark] = {}
        """Per partition: the input offsets everything folded so far came from."""
        self.checkpointed_at: dict[int, float] = {}
        self.consumed: dict[str, dict[str, Decimal]] = {}
        """Credit consumed per customer as last reported: alerts fire on crossings only."""
        self.catalog_version: str | None = None
        self._customers: dict[tuple[str, int], list[str]] = {}
        self.nothing_due: set[tuple[str, datetime, str]] = set()
        """(customer, period start, catalog version) rated to no invoice, or that the catalog
        could not rate (dead-lettered): not asked again until the catalog changes."""

    # -- state ------------------------------------------------------------------------

    def customers_of(self, catalog: Catalog, partition: int) -> list[str]:
        """The customers whose records land on ``partition``: hashed once per catalog."""
        key = (catalog.version, partition)
        if key not in self._customers:
            self._customers = {k: v for k, v in self._customers.items() if k[0] == catalog.version}
            self._customers[key] = [
                c.key
                for c in catalog.customers
                if partition_for(c.key.encode(), self.partitions) == partition
            ]
        return self._customers[key]

    async def book(self, partition: int, catalog: Catalog) -> BillingBook:
        if partition not in self.books:
            self.books[partition] = await asyncio.to_thread(self._rebuild, partition, catalog)
        return self.books[partition]

    def _rebuild(self, partition: int, catalog: Catalog) -> BillingBook:
        book = BillingBook(self.settings.period_grace)
        bootstrap = self.settings.kafka_bootstrap
        issued = 0
        for msg in read_partition(bootstrap, self.invoices_name, partition):
            book.record_issued(decode_invoice(value_of(msg)))
            issued += 1
        records = read_partition(bootstrap, self.book_name, partition)
        entries, mark = live_entries((msg.key() or b"", msg.value()) for msg in records)
        book.restore(entries)
        tail = self._replay_tail(book, partition, mark)
        for customer in self.customers_of(catalog, partition):  # alerts already sent stay sent
            draft = self._draft(book, catalog, customer)
            if draft is not None:
                self.consumed[customer] = consumed_with_draft(book, customer, draft)
        self.dirty[partition].update(book.usage)
        log.info(
            "rebuilt billing book of partition %d from %s: %d entries and %d input records"
            " after its mark, %d customers with usage, %d invoices issued, watermark %s",
            partition,
            self.book_name,
            len(entries),
            tail,
            len(book.usage),
            issued,
            book.watermark.isoformat(),
        )
        return book

    def _replay_tail(self, book: BillingBook, partition: int, mark: Mark) -> int:
        """Fold the input written after the last checkpoint's mark; returns records read.
        Its changes are not in billing.book yet: they stay journaled for the next one."""
        bootstrap, read = self.settings.kafka_bootstrap, 0
        windows_at, late_at = mark.windows_offset, mark.late_offset
        for msg in read_partition(bootstrap, self.windows_name, partition, start=windows_at):
            windows_at, read = position_of(msg).offset + 1, read + 1
            try:
                changes, watermark = window_changes(value_of(msg))
            except (UnreadableRecord, ValueError):
                continue  # dead-lettered when it was first read
            book.fold_windows(changes)
            book.advance(watermark)
        for msg in read_partition(bootstrap, self.late_name, partition, start=late_at):
            late_at, read = position_of(msg).offset + 1, read + 1
            try:
                book.fold_late(late_changes(value_of(msg)))
            except (UnreadableRecord, ValueError):
                continue
        self.positions[partition] = Mark(windows_at, late_at)
        self.checkpointed_at[partition] = time.monotonic()
        return read

    def forget_partitions(self, revoked: set[TP]) -> None:
        for tp in revoked:
            if tp.topic == self.windows_name:
                self.books.pop(tp.partition, None)
                self.dirty.pop(tp.partition, None)
                self.progress.forget(tp.partition)
                self.pending.pop(tp.partition, None)  # the next owner replays from the mark
                self.positions.pop(tp.partition, None)

    # -- processing -------------------------------------------------------------------

    async def process(self, events: list[EventT[bytes]]) -> None:
        catalog = self.feed.current
        assert catalog is not None
        if catalog.version != self.catalog_version:  # a fix may change any open or issued period
            self.catalog_version = catalog.version
            for partition, book in self.books.items():
                self.dirty[partition].update(book.usage)
        sends: list[Awaitable[Any]] = []
        for partition, batch in by_partition(events).items():
            book = await self.book(partition, catalog)
            closing: list[str | None] = []
            for event in batch:
                topic, payload = event.message.topic, event.message.value
                try:
                    if payload is None:
                        raise UnreadableRecord("a tombstone, on a topic that never carries one")
                    if topic == self.windows_name:
                        changes, watermark = window_changes(payload)
                        self.dirty[partition] |= book.fold_windows(changes)
                        self.dirty[partition] |= book.advance(watermark)
                    elif topic == self.late_name:
                        self.dirty[partition] |= book.fold_late(late_changes(payload))
                    elif topic == self.commands_name:
                        closing.append(self._close_request(catalog, payload))
                except UnreadableRecord as exc:
                    message = event.message
                    sends.append(
                        await self._dead_letter(
                            Reason.UNREADABLE_RECORD,
                            str(exc),
                            message.topic,
                            message.partition,
                            message.offset,
                            payload,
                        )
                    )
            sends += await self.issue(partition, book, catalog, closing)
            self.seal(partition, book, catalog)
            self.progress.advance(partition, book.watermark)
            self._journaled(partition, book, batch)
            sends += await self.checkpoint(partition, book)
            sends += await self.report_spend(partition, book, catalog, force=bool(closing))
        await asyncio.gather(*sends)

    def seal(self, partition: int, book: BillingBook, catalog: Catalog) -> None:
        """Once per day of event time: drop the usage of periods nothing can change any more
        (invoiced, and older than any event ingest accepts), so the book stays bounded."""
        day = book.watermark.date()
        if self.sealed_on.get(partition) == day:
            return
        self.sealed_on[partition] = day
        s = self.settings
        horizon = s.max_event_age + s.max_clock_skew + s.period_grace + SEAL_MARGIN
        dropped = book.seal(catalog, horizon)
        if dropped:
            log.info(
                "sealed partition %d: %d entries of settled periods dropped", partition, dropped
            )

    def _journaled(self, partition: int, book: BillingBook, batch: list[EventT[bytes]]) -> None:
        """Take the batch's book changes and where its input ends (with no await between:
        a checkpoint always writes changes and positions that belong together)."""
        self.pending[partition].update((entry_key(e), e) for e in book.take_journal())
        at = self.positions.get(partition, Mark())
        ends = {self.windows_name: at.windows_offset, self.late_name: at.late_offset}
        for event in batch:
            topic = event.message.topic
            if topic in ends:
                ends[topic] = max(ends[topic], event.message.offset + 1)
        self.positions[partition] = Mark(ends[self.windows_name], ends[self.late_name])

    async def checkpoint(
        self, partition: int, book: BillingBook, force: bool = False
    ) -> list[Awaitable[Any]]:
        """Every ``RAILYARD_BOOK_CHECKPOINT``: the pending changes, then the mark saying what
        input they cover. Sent (and awaited) before the batch's offsets are committed."""
        interval = self.settings.book_checkpoint.total_seconds()
        now = time.monotonic()
        if not force and now - self.checkpointed_at.get(partition, 0.0) < interval:
            return []
        self.checkpointed_at[partition] = now
        entries = self.pending.pop(partition, {})
        mark = self.positions.get(partition, Mark())
        # Straight to the producer: a checkpoint is thousands of records, and a Faust
        # topic send costs about twice the producer's own work per record (py-spy).
        send, topic, at = self.app.producer.send, self.book_name, book.watermark
        sends = [
            await send(topic, key, encode_entry(entry, at), partition, None, None)
            for key, entry in entries.items()
        ]
        sends.append(await send(topic, MARK_KEY, encode_mark(mark, at), partition, None, None))
        return sends

    async def _dead_letter(
        self,
        reason: Reason,
        detail: str,
        topic: str,
        partition: int,
        offset: int,
        original: bytes | None,
        subject: str | None = None,
    ) -> Awaitable[Any]:
        log.error("dead-lettered %s[%d]@%d: %s: %s", topic, partition, offset, reason, detail)
        EVENTS_DEAD_LETTERED.labels("rate", reason).inc()
        record = encode_dead_letter(
            Rejection(reason, detail, subject=subject),
            stage="rate",
            topic=topic,
            partition=partition,
            offset=offset,
            index=0,
            original=original or b"",
        )
        return await self.dlq.send(value=record)

    def _close_request(self, catalog: Catalog, payload: bytes) -> str | None:
        """The month (YYYY-MM) whose periods to close now; ``None``: those ended by event time."""
        try:
            command = BILLING_COMMANDS.decode(payload)
        except Exception as exc:  # an operator's record: refuse it loudly, keep billing
            log.error("ignoring a billing command that is not a BillingCommand: %r", exc)
            return None
        if command["command"] != "close_period":
            log.warning("ignoring unknown billing command %r", command["command"])
            return None
        month: str | None = command["period"]
        return month

    async def issue(
        self,
        partition: int,
        book: BillingBook,
        catalog: Catalog,
        months: Iterable[str | None] = (),
    ) -> list[Awaitable[Any]]:
        customers = self.customers_of(catalog, partition)
        due = book.due(catalog, customers)
        for month in months:
            if month is not None:
                due += [d for d in book.due(catalog, customers, month) if d not in due]
        sends: list[Awaitable[Any]] = []
        for customer, period in due:
            if (customer, period.start, catalog.version) in self.nothing_due:
                continue
            try:
                invoice = book.invoice(catalog, customer, period, issued_at=period.end)
            except (RailyardError, ArithmeticError, ValueError) as exc:
                self.nothing_due.add((customer, period.start, catalog.version))
                detail = f"{customer} {period.start:%Y-%m-%d}..{period.end:%Y-%m-%d}: {exc}"
                sends.append(
                    await self._dead_letter(
                        Reason.RATING_FAILED,
                        detail,
                        self.windows_name,
                        partition,
                        -1,
                        None,
                        subject=customer,
                    )
                )
                continue
            if invoice is None:  # not subscribed in that period: nothing to bill
                self.nothing_due.add((customer, period.start, catalog.version))
                continue
            book.record_issued(invoice)
            self.dirty[partition].add(customer)
            sends.append(await self._send_invoice(invoice, partition))
        return sends

    async def _send_invoice(self, invoice: Invoice, partition: int) -> Awaitable[Any]:
        log.info(
            "issued %s %s for %s, %s..%s: %s %s on %s",
            invoice.kind,
            invoice.number,
            invoice.customer,
            invoice.period_start.date(),
            invoice.period_end.date(),
            invoice.total,
            invoice.currency,
            invoice.rail,
        )
        INVOICES_ISSUED.labels(invoice.rail).inc()
        return await self.invoices.send(
            key=invoice.customer.encode(), value=encode_invoice(invoice), partition=partition
        )

    def _draft(self, book: BillingBook, catalog: Catalog, customer: str) -> Invoice | None:
        """The open period's running invoice; None (logged) when the catalog cannot rate it:
        the period's close dead-letters it with the reason."""
        try:
            return book.draft(catalog, customer)
        except (RailyardError, ArithmeticError, ValueError) as exc:
            log.warning(
                "no running spend for %s under catalog %s: %s", customer, catalog.version, exc
            )
            return None

    async def report_spend(
        self, partition: int, book: BillingBook, catalog: Catalog, force: bool = False
    ) -> list[Awaitable[Any]]:
        now = time.monotonic()
        if not force and now - self.spent_at.get(partition, 0.0) < SPEND_INTERVAL_S:
            return []
        self.spent_at[partition] = now
        sends: list[Awaitable[Any]] = []
        for customer in sorted(self.dirty.pop(partition, set())):
            draft = self._draft(book, catalog, customer)
            spend = None
            if draft is not None:
                spend = running_spend(book, catalog, customer, draft, self.consumed.get(customer))
            if spend is None:
                continue
            key = customer.encode()
            for alert in spend.alerts:
                sends.append(
                    await self.credit_events.send(
                        key=key, value=CREDIT_EVENTS.encode(_alert(alert))
                    )
                )
            self.consumed[customer] = spend.consumed
            record = asdict(spend.record)
            sends.append(
                await self.spend.send(key=key, value=SPEND.encode(record), partition=partition)
            )
        return sends


def _alert(alert: CreditEvent) -> dict[str, Any]:
    return {
        "customer": alert.customer,
        "grant": alert.grant,
        "kind": str(alert.kind),
        "percent": alert.percent,
        "remaining": alert.remaining,
        "currency": alert.currency,
        "at": alert.at,
    }


def register_rate(app: faust.App, settings: Settings, feed: CatalogFeed) -> RateStage:
    stage = RateStage(app, settings, feed)
    batch_agent(
        app,
        stage.source,
        "rate_windows",
        stage.process,
        messages=500,
        within_s=0.2,
        forget=stage.forget_partitions,
    )

    async def flush_spend() -> None:
        """Spend held back by the once-a-second limit, and book changes waiting for their
        checkpoint, still go out when input stops."""
        catalog = stage.feed.current
        if catalog is None:
            return
        sends: list[Awaitable[Any]] = []
        for partition, book in list(stage.books.items()):
            sends += await stage.report_spend(partition, book, catalog)
            if stage.pending.get(partition):  # input stopped: checkpoint what is waiting
                sends += await stage.checkpoint(partition, book)
        await asyncio.gather(*sends)

    every(app, SPEND_INTERVAL_S, flush_spend)
    return stage
