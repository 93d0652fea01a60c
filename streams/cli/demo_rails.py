"""The demo's last step: every invoice on ``invoices.<rail>`` delivered to its rail.

The rails here are the sandbox's local stand-ins (:mod:`connectors.rails.sandbox`):
stripe-mock for Stripe, spec-validating servers for the others. Nothing leaves
the machine. Each rail's connector is the real one, ``railyard rails run RAIL
--idle-exit 5`` in a process of its own with the peer's settings in its
environment, so what the demo shows is what the runner does in production: the
outcome lands on ``invoices.status`` (and ``invoices.dlq``), the sink writes it to
ClickHouse, and the tables are read back from ``invoice_delivery``. Then the
stand-ins of the rails that notify send payment notifications to ``railyard rails
listen`` (:mod:`streams.cli.demo_payments`).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from connectors.clickhouse.analyst import query
from connectors.clickhouse.sql import literal
from connectors.processes import ManagedProcess, spawn
from connectors.rails.config import RailConfig
from streams.cli.demo_payments import notify_payments
from streams.domain.errors import RailyardError
from streams.domain.invoice import Invoice
from streams.settings import Settings

IDLE_EXIT = 5
"""Seconds a connector waits with nothing to do before it exits (``--idle-exit``)."""
SETTLE_TIMEOUT = 300.0
SETTLED = ("delivered", "failed")
"""``invoice_delivery`` statuses that end an invoice's delivery (failed = dead-lettered)."""


@dataclass(frozen=True)
class Outcome:
    """One invoice's row of ``invoice_delivery``."""

    invoice_id: str
    rail: str
    status: str
    attempts: int
    retries: int
    refs: Mapping[str, str]
    rail_status: str | None
    error: str | None


def deliver_invoices(
    settings: Settings, console: Console, procs: Sequence[ManagedProcess] | None, rails: set[str]
) -> None:
    """Deliver the invoices on ``invoices.<rail>`` for each of ``rails`` to the rail's sandbox
    peer, wait until ClickHouse shows each delivered or dead-lettered, and show how it went.

    ``procs`` (the sink and worker) must stay alive meanwhile: the statuses reach the
    store through the sink. Raises :class:`RailyardError` if a connector fails or an
    invoice is still unsettled after :data:`SETTLE_TIMEOUT`.
    """
    from connectors.rails.sandbox import peer_names, start_peer

    console.rule("[bold]Delivery: every invoice to its rail (the local rail sandbox)")
    invoices = invoices_on_rail_topics(settings, rails)
    missing = sorted(rail for rail in invoices if rail not in peer_names())
    for rail in missing:
        console.print(f"{rail}: the sandbox has no peer; its invoices wait on invoices.{rail}")
        del invoices[rail]
    if not invoices:
        console.print("no invoices to deliver")
        return
    with ExitStack() as stack:
        configs: dict[str, RailConfig] = {}
        peers: dict[str, object] = {}
        for rail in sorted(invoices):
            directory = settings.home / "sandbox" / rail
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir(parents=True)
            peer = start_peer(rail, directory)
            stack.callback(peer.stop)
            configs[rail] = peer.config()
            peers[rail] = peer
        console.print(
            "sandbox peers (local stand-ins, not the rails): "
            + ", ".join(f"{rail} at {_address(config)}" for rail, config in configs.items())
        )
        connectors = [_spawn_connector(settings, rail, config) for rail, config in configs.items()]
        stack.callback(lambda: [c.stop() for c in connectors])
        console.print(
            f"running {len(connectors)} connectors: railyard rails run <rail> --idle-exit "
            f"{IDLE_EXIT} (logs in {settings.home / 'logs'}/rails-<rail>.log)"
        )
        outcomes = _wait_settled(settings, console, invoices, procs or [], connectors)
        _show_delivery(console, invoices, outcomes)
        refs = {i: o.refs for i, o in outcomes.items() if o.status == "delivered"}
        notify_payments(settings, console, peers, invoices, refs)


def invoices_on_rail_topics(
    settings: Settings, rails: set[str], timeout: float = 30.0
) -> dict[str, list[Invoice]]:
    """Every invoice on ``invoices.<rail>`` now, by rail (rails without any left out).

    One consumer reads every partition of every rail topic up to its end at the call:
    a consumer per topic costs a connection and a fetch wait each, seconds per poll.
    """
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    from connectors.kafka.topics import rail_topic, topic_name
    from streams.wire.invoices import decode_invoice

    by_topic = {topic_name(settings, rail_topic(rail)): rail for rail in rails}
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": "railyard-demo",  # assign() only: never joins or commits
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    found: dict[str, dict[str, Invoice]] = {}
    try:
        metadata = consumer.list_topics(timeout=10).topics
        ends: dict[tuple[str, int], int] = {}
        for topic in sorted(by_topic):
            meta = metadata.get(topic)
            for partition in sorted(meta.partitions) if meta and not meta.error else ():
                tp = TopicPartition(topic, partition)
                low, high = consumer.get_watermark_offsets(tp, timeout=10)
                if high > low:
                    ends[(topic, partition)] = high
        consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in ends])
        deadline = time.monotonic() + timeout
        while ends:
            if time.monotonic() > deadline:
                raise RailyardError(f"timed out reading {', '.join(sorted(by_topic))}")
            for msg in consumer.consume(num_messages=500, timeout=0.2):
                err, at = msg.error(), (msg.topic() or "", msg.partition() or 0)
                if err is not None and err.code() == KafkaError._PARTITION_EOF:
                    ends.pop(at, None)
                elif err is not None:
                    raise RailyardError(f"reading {at[0]}[{at[1]}] failed: {err}")
                else:
                    invoice = decode_invoice(msg.value() or b"")
                    found.setdefault(by_topic[at[0]], {})[invoice.id] = invoice
                    if (msg.offset() or 0) >= ends.get(at, 0) - 1:
                        ends.pop(at, None)
    finally:
        consumer.close()
    return {
        rail: sorted(invoices.values(), key=lambda i: i.number)
        for rail, invoices in sorted(found.items())
    }


def _address(config: RailConfig) -> str:
    """Where the config points the rail (its URL, or the outbox directory)."""
    for key in ("api_base", "base_url", "login_url", "url", "directory"):
        if config.get(key):
            return str(config.get(key))
    return "?"


def _spawn_connector(settings: Settings, rail: str, config: RailConfig) -> ManagedProcess:
    """``railyard rails run RAIL --idle-exit 5`` pointed at the sandbox peer."""
    # The peer's settings only: a RAILYARD_RAIL_<RAIL>_* of the caller's (a real key, or a
    # *_FILE that would win over the sandbox's value) must not point the demo at a real rail.
    prefix = f"RAILYARD_RAIL_{rail.upper().replace('-', '_')}_"
    environ = {k: v for k, v in os.environ.items() if not k.startswith(prefix)}
    command = ["rails", "run", rail, "--idle-exit", str(IDLE_EXIT)]
    return spawn(f"rails-{rail}", command, settings, environ=environ | config.to_env())


def _outcomes(settings: Settings, invoice_ids: list[str]) -> dict[str, Outcome]:
    ids = ", ".join(literal(i) for i in invoice_ids)
    result = query(
        settings,
        "SELECT invoice_id, rail, status, attempts, retries, rail_refs, rail_status, error_message "
        f"FROM invoice_delivery WHERE invoice_id IN ({ids})",
    )
    return {
        row[0]: Outcome(
            row[0], row[1], row[2], int(row[3]), int(row[4]), dict(row[5] or {}), row[6], row[7]
        )
        for row in result.rows
    }


def _wait_settled(
    settings: Settings,
    console: Console,
    invoices: dict[str, list[Invoice]],
    procs: Sequence[ManagedProcess],
    connectors: Sequence[ManagedProcess],
) -> dict[str, Outcome]:
    """Poll ``invoice_delivery`` until every invoice is delivered or dead-lettered."""
    ids = [i.id for batch in invoices.values() for i in batch]
    procs = [*procs, *connectors]
    deadline = time.monotonic() + SETTLE_TIMEOUT
    with Progress(
        TextColumn("[bold]{task.description:>12}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        tasks = {
            rail: progress.add_task(rail, total=len(batch)) for rail, batch in invoices.items()
        }
        while True:
            for p in procs:
                code = p.popen.poll()
                # A connector exits 0 once it has been idle; the sink and worker never should.
                if code is not None and (code != 0 or p not in connectors):
                    raise RailyardError(f"{p.name} exited ({code}):\n{p.log_tail()}")
            try:
                outcomes = _outcomes(settings, ids)
            except RailyardError:
                outcomes = {}  # the sink is busy; ask again
            for rail, batch in invoices.items():
                settled = [
                    i for i in batch if i.id in outcomes and outcomes[i.id].status in SETTLED
                ]
                progress.update(tasks[rail], completed=len(settled))
            if all(i in outcomes and outcomes[i].status in SETTLED for i in ids):
                return outcomes
            if time.monotonic() > deadline:
                raise RailyardError(
                    f"timed out after {SETTLE_TIMEOUT:.0f}s waiting for every invoice to be "
                    f"delivered or dead-lettered; see {settings.home / 'logs'}/rails-*.log"
                )
            time.sleep(0.5)


def rail_ids(refs: Mapping[str, str], invoice: Invoice) -> str:
    """The rail's own ids for an invoice, leaving out Railyard's key echoed back."""
    return ", ".join(
        f"{k}={v}" for k, v in sorted(refs.items()) if invoice.idempotency_key not in v
    )


def _show_delivery(
    console: Console, invoices: dict[str, list[Invoice]], outcomes: dict[str, Outcome]
) -> None:
    summary = Table(title="Delivery per rail (invoice_delivery)")
    for col in ("rail", "invoices", "delivered", "retried", "dead-lettered"):
        summary.add_column(col, justify="left" if col == "rail" else "right")
    summary.add_column("rail references (first invoice)")
    detail = Table(title="Delivery per invoice")
    for col in (
        "number",
        "customer",
        "rail",
        "status",
        "attempts",
        "rail status",
        "rail ids / error",
    ):
        detail.add_column(col, justify="right" if col == "attempts" else "left")
    for rail, batch in invoices.items():
        rows = [(i, outcomes[i.id]) for i in batch]
        delivered = [(i, o) for i, o in rows if o.status == "delivered"]
        first = rail_ids(delivered[0][1].refs, delivered[0][0]) if delivered else "-"
        summary.add_row(
            rail,
            str(len(rows)),
            str(len(delivered)),
            str(sum(1 for _, o in rows if o.retries)),
            str(sum(1 for _, o in rows if o.status == "failed")),
            first,
        )
        for invoice, o in rows:
            shown = rail_ids(o.refs, invoice) if o.status == "delivered" else (o.error or "")
            detail.add_row(
                invoice.number,
                invoice.customer,
                rail,
                o.status,
                str(o.attempts),
                o.rail_status or "",
                shown,
            )
    console.print(summary)
    console.print(detail)
    total = sum(len(b) for b in invoices.values())
    dead = sum(1 for o in outcomes.values() if o.status == "failed")
    console.print(
        f"{total - dead} of {total} invoices delivered to {len(invoices)} rails' sandbox peers"
        + (f"; {dead} dead-lettered (railyard invoices --status shows why)" if dead else "")
    )
